import type { FastifyInstance } from 'fastify';
import { runningVersion } from '../metrics/buildInfo.ts';
import type { Readiness } from '../metrics/readiness.ts';
import type { SchedulerMetrics, ScrapeSample } from '../metrics/schedulerMetrics.ts';
import { countSubmissionRefusals } from '../metrics/submissionRefusals.ts';
import { isAuthorized } from './auth.ts';
import { httpTexts } from './httpErrors.ts';

/** What `/readyz` and `/metrics` read; without it only `/healthz` is served. */
export interface ObservabilityDeps {
  metrics: SchedulerMetrics;
  /** The gauges read at scrape time (each source within its own deadline). */
  sample: () => Promise<ScrapeSample>;
  readiness: () => Promise<Readiness>;
}

export interface HealthRouteDeps {
  authToken: string;
  observability?: ObservabilityDeps;
}

/**
 * Liveness without a token (`/healthz`: the process answers, with its version), readiness and Prometheus
 * metrics with it (`/readyz`, `/metrics`; Prometheus sends `Authorization: Bearer`). Also
 * times every answer of the app for the HTTP latency histogram, so it is called on the root
 * instance, before the other routes' plugins.
 */
export async function healthRoutes(app: FastifyInstance, deps: HealthRouteDeps): Promise<void> {
  const version = runningVersion();
  app.get('/healthz', async () => ({ status: 'ok', version }));

  const observability = deps.observability;
  if (!observability) return;
  app.addHook('onResponse', async (request, reply) => {
    // The route's pattern, not its URL, keeps the label set bounded whatever clients ask.
    const route = request.routeOptions.url ?? 'unmatched';
    observability.metrics.observeRequest(
      request.method,
      route,
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
  });
  countSubmissionRefusals(app, observability.metrics);

  await app.register(async (authenticated) => {
    authenticated.addHook('onRequest', async (request, reply) => {
      if (!isAuthorized(request.headers.authorization, deps.authToken)) {
        request.log.info('request refused without a valid token');
        await reply.code(403).type('text/html; charset=utf-8').send(httpTexts.forbidden);
      }
    });

    authenticated.get('/readyz', async (_request, reply) => {
      const readiness = await observability.readiness();
      const status = readiness.ready ? 'ready' : 'not_ready';
      await reply.code(readiness.ready ? 200 : 503).send({ status, checks: readiness.checks });
    });

    authenticated.get('/metrics', async (_request, reply) => {
      observability.metrics.applySample(await observability.sample());
      const exposition = await observability.metrics.render();
      await reply.type(exposition.contentType).send(exposition.text);
    });
  });
}
