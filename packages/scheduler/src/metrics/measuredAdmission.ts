import type { Submission } from '../submission/parseSubmission.ts';
import {
  type AdmissionOptions,
  type AdmissionResult,
  RunAdmission,
  type RunAdmissionDeps,
} from '../submission/runAdmission.ts';
import type { SchedulerMetrics } from './schedulerMetrics.ts';

/**
 * Admission that counts what it decided: accepted (new or a resend) and refused over the
 * quota, or refused because MariaDB or the log did not answer. Requests refused before
 * admission (no token, a malformed body) show in the HTTP metric as 4xx of the route.
 *
 * TODO(#8): those early refusals are not in `pipeline_scheduler_submissions_total` by
 * reason; counting them needs the route to say why it refused (runRoutes is not ours).
 */
export class MeasuredRunAdmission extends RunAdmission {
  private readonly metrics: SchedulerMetrics;

  constructor(deps: RunAdmissionDeps, metrics: SchedulerMetrics) {
    super(deps);
    this.metrics = metrics;
  }

  override async admit(
    submission: Submission,
    options: AdmissionOptions = {},
  ): Promise<AdmissionResult> {
    let result: AdmissionResult;
    try {
      result = await super.admit(submission, options);
    } catch (error) {
      this.metrics.countSubmission({ outcome: 'refused', reason: 'unavailable' });
      throw error;
    }
    if (result.outcome === 'refused') {
      this.metrics.countSubmission({ outcome: 'refused', reason: 'quota_exceeded' });
    } else {
      this.metrics.countSubmission({
        outcome: 'accepted',
        reason: result.duplicate ? 'duplicate' : 'new',
      });
    }
    return result;
  }
}
