import type { ClaimAnswer } from './claimClient.ts';

/** What becomes of a held run request after its claim was answered. */
export type RequestDisposition =
  | { action: 'ack'; execute: boolean }
  | { action: 'nak'; delayMs: number };

/** Longest wait before a request nobody answered for is offered again. */
export const maxUnansweredDelayMs = 30_000;

/**
 * The ack policy of docs/internals.md, "Claiming": `run` and `drop` give the run to the log
 * (ack; only `run` is executed here); `defer` puts it back with the scheduler's delay; no
 * answer puts it back with a back-off of 1 s doubling per delivery, at most 30 s.
 */
export function requestDisposition(answer: ClaimAnswer, deliveryCount: number): RequestDisposition {
  switch (answer.decision) {
    case 'run':
      return { action: 'ack', execute: true };
    case 'drop':
      return { action: 'ack', execute: false };
    case 'defer':
      return { action: 'nak', delayMs: answer.delayMs };
    case 'unanswered':
      return {
        action: 'nak',
        delayMs: Math.min(maxUnansweredDelayMs, 1_000 * 2 ** Math.max(0, deliveryCount - 1)),
      };
  }
}
