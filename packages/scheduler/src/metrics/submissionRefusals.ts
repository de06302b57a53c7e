import { outputTexts } from '@pipeline/events';
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import type { RefusalReason, SchedulerMetrics } from './schedulerMetrics.ts';

/** The route SeaTable submits runs to. */
const submitRoute = { method: 'POST', url: '/run-script/' } as const;

/**
 * Counts every refused `POST /run-script/` in `pipeline_scheduler_submissions_total` by
 * why it was refused, whichever step refused it: the token check, the body limit, the
 * parsing, the monthly quota or an outage. It reads the answer that went out (and the error
 * behind it), so the steps themselves need not know about metrics; accepted submissions
 * are counted by the admission, which knows a resend from a new run.
 *
 * Registered on the root instance before the routes, so its hooks see every route's answers.
 */
export function countSubmissionRefusals(app: FastifyInstance, metrics: SchedulerMetrics): void {
  const errors = new WeakMap<FastifyRequest, Error>();
  app.addHook('onError', async (request, _reply, error) => {
    if (isSubmission(request)) errors.set(request, error);
  });
  app.addHook('onResponse', async (request, reply) => {
    if (!isSubmission(request) || reply.statusCode < 400) return;
    const reason = refusalReason(reply.statusCode, errors.get(request));
    metrics.countSubmission({ outcome: 'refused', reason });
  });
}

function isSubmission(request: FastifyRequest): boolean {
  return request.method === submitRoute.method && request.routeOptions.url === submitRoute.url;
}

/** One stable label per kind of refusal; the status code alone cannot tell quota from syntax. */
export function refusalReason(statusCode: number, error: Error | undefined): RefusalReason {
  if (statusCode === 401 || statusCode === 403) return 'unauthorized';
  if (statusCode === 413) return 'body_too_large';
  if (statusCode === 422) return 'idempotency_key_reused';
  if (statusCode === 503) return 'unavailable';
  if (statusCode >= 500) return 'internal_error';
  // The admission's refusal over the monthly limit is a 400 with the original's text.
  if (error?.message === outputTexts.quotaExceeded) return 'quota_exceeded';
  if ((error as FastifyError | undefined)?.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return 'body_too_large';
  }
  return 'bad_request';
}
