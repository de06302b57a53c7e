import type { Submission } from '../submission/parseSubmission.ts';
import {
  type AdmissionOptions,
  type AdmissionResult,
  RunAdmission,
  type RunAdmissionDeps,
} from '../submission/runAdmission.ts';
import type { SchedulerMetrics } from './schedulerMetrics.ts';

/**
 * Admission that counts the submissions it accepted: new runs and resends answered with
 * the first run's id. Refusals, its own (over the quota, an outage) and those of the steps
 * before it, are counted from the answer by `countSubmissionRefusals`, once each.
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
    const result = await super.admit(submission, options);
    if (result.outcome === 'accepted') {
      this.metrics.countSubmission({
        outcome: 'accepted',
        reason: result.duplicate ? 'duplicate' : 'new',
      });
    }
    return result;
  }
}
