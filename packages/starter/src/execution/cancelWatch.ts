import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import { decodeEvent, type Naming, subjects } from '@pipeline/events';
import type { Logger } from 'pino';
import { settleWithin } from '../retry.ts';

/** How long the watch waits for the server to confirm the subscription. */
const flushTimeoutMs = 2_000;

/** A run's cancel signal: aborted once a RunCancelRequested for the run was seen. */
export interface CancelWatch {
  readonly signal: AbortSignal;
  close(): void;
}

/** A watch that never fires: for runs whose subject could not be watched, and for tests. */
export function unwatched(): CancelWatch {
  return { signal: new AbortController().signal, close: () => {} };
}

/**
 * Listens (core NATS) on one run's cancel subject, where a scheduler repeats the run's
 * RunCancelRequested once it is in the log. Opened before the starter asks for the claim and
 * flushed, so the server has the interest before the run is claimed: a cancel appended after
 * RunClaimed always reaches the watch. A starter may read its runs' cancel subjects and
 * nothing of the log (deploy/nats/accounts.conf), so it never sees other runs' events.
 *
 * A failure to subscribe (NATS away, permissions) is logged and leaves the run uncancellable
 * rather than failing it.
 */
export async function watchForCancel(
  nc: NatsConnection,
  naming: Naming,
  runId: number,
  log: Logger,
): Promise<CancelWatch> {
  const cancelled = new AbortController();
  let subscription: Subscription;
  try {
    subscription = nc.subscribe(subjects.cancels(naming, runId), {
      callback: (error, message) => {
        if (error) {
          log.warn({ err: error }, 'cancel watch failed');
          return;
        }
        const event = decodeEvent(message.data);
        if (!event.ok || event.value.type !== 'RunCancelRequested') return;
        if (event.value.runId !== runId) return;
        if (!cancelled.signal.aborted) log.info('run cancel requested');
        cancelled.abort();
      },
    });
    // While NATS is away the flush waits for the reconnect; the run need not wait with it.
    await settleWithin(nc.flush(), flushTimeoutMs, null);
  } catch (error) {
    log.warn({ err: error }, 'run cannot be watched for a cancel');
    return unwatched();
  }
  return {
    signal: cancelled.signal,
    close: () => {
      if (!subscription.isClosed()) subscription.unsubscribe();
    },
  };
}
