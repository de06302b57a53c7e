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
      return { action: 'nak', delayMs: redeliveryDelayMs(deliveryCount) };
  }
}

/**
 * Deliveries of a run request this starter cannot read (a newer schema version, another
 * event on the requests' subject, bytes that are not JSON) before it ends the run, and how
 * old the request must be by then. Until both are reached the request is put back for the
 * fleet's other starters: during a rolling upgrade an upgraded one reads it. The age matters
 * because the delivery count is shared: an upgraded starter's fair-share deferrals raise it
 * too, and a run they deferred must not be ended by the first old starter that sees it.
 */
export const maxUnreadableDeliveries = 5;
export const unreadableGiveUpAfterMs = 15 * 60_000;

/** What becomes of a run request that did not decode. */
export type UnreadableDisposition = { action: 'nak'; delayMs: number } | { action: 'finish' };

export interface UnreadableTiming {
  /** The first delay; it doubles per delivery. @default 1000 */
  firstDelayMs?: number;
  /** How old a request must be before its run is ended. @default unreadableGiveUpAfterMs */
  giveUpAfterMs?: number;
}

/**
 * Put back with `redeliveryDelayMs` until the `maxUnreadableDeliveries`th delivery of
 * a request at least `giveUpAfterMs` old, which ends the run (`finish`).
 */
export function unreadableRequestDisposition(
  deliveryCount: number,
  ageMs: number,
  timing: UnreadableTiming = {},
): UnreadableDisposition {
  const giveUpAfterMs = timing.giveUpAfterMs ?? unreadableGiveUpAfterMs;
  if (deliveryCount >= maxUnreadableDeliveries && ageMs >= giveUpAfterMs) {
    return { action: 'finish' };
  }
  return { action: 'nak', delayMs: redeliveryDelayMs(deliveryCount, timing.firstDelayMs) };
}

/**
 * How long a request put back without an answer waits before it is offered again:
 * `firstDelayMs` (1 s) doubling per delivery, at most 30 s.
 */
export function redeliveryDelayMs(deliveryCount: number, firstDelayMs = 1_000): number {
  return Math.min(maxUnansweredDelayMs, firstDelayMs * 2 ** Math.max(0, deliveryCount - 1));
}
