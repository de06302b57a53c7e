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
