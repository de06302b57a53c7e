import type { NatsConnection } from '@nats-io/nats-core';
import {
  type ClaimReply,
  type ClaimRequest,
  claimReplySchema,
  decodeWith,
  encodeJson,
  type Naming,
  subjects,
} from '@pipeline/events';

/** How long a starter waits for a scheduler's claim decision (docs/internals.md, "Claiming"). */
export const claimTimeoutMs = 10_000;

/** A scheduler's decision, or no decision at all. */
export type ClaimAnswer = ClaimReply | { decision: 'unanswered'; reason: string };

/**
 * Asks the schedulers (a queue group on the claims subject) whether this starter may run a
 * request. Never throws: no responder, a timeout, a lost connection or an unreadable reply
 * are all "unanswered", which puts the request back with a back-off.
 */
export async function requestClaim(
  nc: NatsConnection,
  naming: Naming,
  request: ClaimRequest,
  timeoutMs = claimTimeoutMs,
): Promise<ClaimAnswer> {
  let reply: Uint8Array;
  try {
    const message = await nc.request(subjects.claims(naming), encodeJson(request), {
      timeout: timeoutMs,
    });
    reply = message.data;
  } catch (error) {
    return { decision: 'unanswered', reason: (error as Error).message };
  }
  const decoded = decodeWith(claimReplySchema, reply);
  if (!decoded.ok) return { decision: 'unanswered', reason: `unreadable reply: ${decoded.reason}` };
  return decoded.value;
}
