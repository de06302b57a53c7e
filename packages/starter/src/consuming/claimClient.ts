import type { KeyObject } from 'node:crypto';
import type { NatsConnection } from '@nats-io/nats-core';
import {
  type ClaimReply,
  type ClaimRequest,
  claimGrantSchema,
  claimReplySchema,
  decodeWith,
  encodeJson,
  type Naming,
  openSealed,
  subjects,
} from '@pipeline/events';

/** How long a starter waits for a scheduler's claim decision (docs/internals.md, "Claiming"). */
export const claimTimeoutMs = 10_000;

/** A scheduler's decision (a sealed grant already opened), or no decision at all. */
export type ClaimAnswer =
  | Exclude<ClaimReply, { decision: 'sealed' }>
  | { decision: 'unanswered'; reason: string };

/**
 * Asks the schedulers (a queue group on the claims subject) whether this starter may run a
 * request. With `replyKey` set in the request, a grant comes back sealed to that key and is
 * opened with `privateKey`. Never throws: no responder, a timeout, a lost connection or an
 * unreadable reply are all "unanswered", which puts the request back with a back-off.
 */
export async function requestClaim(
  nc: NatsConnection,
  naming: Naming,
  request: ClaimRequest,
  privateKey?: KeyObject,
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
  if (decoded.value.decision !== 'sealed') return decoded.value;
  if (!privateKey) return { decision: 'unanswered', reason: 'a sealed reply without a key' };
  let opened: Buffer;
  try {
    opened = openSealed(decoded.value.sealed, privateKey);
  } catch (error) {
    return {
      decision: 'unanswered',
      reason: `sealed reply not opened: ${(error as Error).message}`,
    };
  }
  const grant = decodeWith(claimGrantSchema, opened);
  if (!grant.ok) return { decision: 'unanswered', reason: `unreadable grant: ${grant.reason}` };
  return grant.value;
}
