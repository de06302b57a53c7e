import type { RunFinished } from './runEvents.ts';

/** How a finished run ended, in the words operators read in metrics and logs. */
export type FinishedOutcome = 'success' | 'failure' | 'timeout' | 'oom' | 'cancelled' | 'lost';

/**
 * The outcome of a `RunFinished`. Lost and cancelled come first: such a run was killed, so
 * its exit status (137 after SIGKILL) says nothing about memory or the script.
 */
export function finishedOutcome(event: RunFinished): FinishedOutcome {
  const { data } = event;
  if (data.lost) return 'lost';
  if (data.cancelled) return 'cancelled';
  if (data.timedOut) return 'timeout';
  if (data.outOfMemory) return 'oom';
  return data.success ? 'success' : 'failure';
}

/** What the pipeline knows of a run it ends without a result from its script. */
export interface EndWithoutResult {
  runId: number;
  /** When it is ended: the event's time and the run's finish. */
  at: Date;
  /** The text the user reads as the run's output. */
  output: string;
  starterId: string | null;
  /** When its script started, if it did; the run time counts from there. */
  startedAt?: Date | null;
  cancelled?: boolean;
  lost?: boolean;
}

/**
 * The `RunFinished` of a run that ends unsuccessful without a result from its script: not
 * dispatched, its request unreadable, cancelled before a claim, or lost. Return code -1, as
 * the original gave such runs; run time from its start, if it had one, to `at`.
 */
export function endWithoutResult(end: EndWithoutResult): RunFinished {
  const at = end.at.toISOString();
  const startedAt = end.startedAt ?? null;
  return {
    type: 'RunFinished',
    schemaVersion: 1,
    occurredAt: at,
    runId: end.runId,
    data: {
      success: false,
      returnCode: -1,
      output: end.output,
      outputChunks: 0,
      outputTruncated: false,
      startedAt: startedAt?.toISOString() ?? null,
      finishedAt: at,
      durationMs: startedAt ? Math.max(0, end.at.getTime() - startedAt.getTime()) : 0,
      timedOut: false,
      outOfMemory: false,
      cancelled: end.cancelled ?? false,
      lost: end.lost ?? false,
      starterId: end.starterId,
    },
  };
}
