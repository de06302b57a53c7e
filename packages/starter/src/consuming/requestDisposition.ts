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

/**
 * Deliveries of a run request this starter cannot read (a newer schema version, another
 * event on the requests' subject, bytes that are not JSON) before it ends the run. Until
 * then the request is put back for the fleet's other starters: during a rolling upgrade an
 * upgraded one may read it. Five deliveries with the back-off below give them about 15 s.
 */
export const maxUnreadableDeliveries = 5;

/** What becomes of a run request that did not decode. */
export type UnreadableDisposition = { action: 'nak'; delayMs: number } | { action: 'finish' };

/**
 * Put back with `unreadableRetryDelayMs` until the `maxUnreadableDeliveries`th delivery,
 * which ends the run (`finish`).
 */
export function unreadableRequestDisposition(
  deliveryCount: number,
  firstDelayMs?: number,
): UnreadableDisposition {
  if (deliveryCount >= maxUnreadableDeliveries) return { action: 'finish' };
  return { action: 'nak', delayMs: unreadableRetryDelayMs(deliveryCount, firstDelayMs) };
}

/** `firstDelayMs` (1 s) doubling per delivery, at most 30 s: the unanswered claim's back-off. */
export function unreadableRetryDelayMs(deliveryCount: number, firstDelayMs = 1_000): number {
  return Math.min(maxUnansweredDelayMs, firstDelayMs * 2 ** Math.max(0, deliveryCount - 1));
}
