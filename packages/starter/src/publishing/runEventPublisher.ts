import type { JetStreamClient } from '@nats-io/jetstream';
import {
  encodeEvent,
  isWrongLastSequence,
  messageIdFor,
  type Naming,
  type RunLifecycleEvent,
  subjects,
} from '@pipeline/events';
import type { Logger } from 'pino';
import { delay, retryDelayMs } from '../retry.ts';

/** Raised when a publish was given up because the starter is stopping at once. */
export class PublishAbortedError extends Error {
  readonly code = 'RUN_EVENT_PUBLISH_ABORTED';

  constructor(message: string) {
    super(message);
    this.name = 'PublishAbortedError';
  }
}

/** Where a run's events go; resolves once the event is stored. */
export interface RunEventSink {
  publish(event: RunLifecycleEvent, part?: number): Promise<void>;
}

/**
 * Appends a run's events to the log. Each publish carries the event's `Nats-Msg-Id`, so a
 * publish retried after a lost acknowledgement is stored once. A result is precious: the
 * publisher keeps it in memory and retries until the log stored it, however long NATS is
 * away (BC-16), unless the starter is told to stop at once.
 */
export class RunEventPublisher implements RunEventSink {
  private readonly js: JetStreamClient;
  private readonly naming: Naming;
  private readonly log: Logger;
  private readonly abort: AbortSignal;

  constructor(js: JetStreamClient, naming: Naming, log: Logger, abort: AbortSignal) {
    this.js = js;
    this.naming = naming;
    this.log = log;
    this.abort = abort;
  }

  /** Resolves once the log stored the event (or already had it). */
  async publish(event: RunLifecycleEvent, part?: number): Promise<void> {
    // Encoding validates: an event that fails is a bug, and retrying will not fix it.
    const payload = encodeEvent(event);
    const subject = subjects.lifecycle(this.naming, event.runId);
    const msgID = messageIdFor(event.runId, event.type, part);
    for (let attempt = 1; ; attempt++) {
      if (this.abort.aborted) {
        throw new PublishAbortedError(`gave up publishing ${event.type} of run ${event.runId}`);
      }
      try {
        const ack = await this.js.publish(subject, payload, { msgID, timeout: 5_000 });
        this.log.debug(
          { runId: event.runId, eventType: event.type, seq: ack.seq, duplicate: ack.duplicate },
          'event stored',
        );
        return;
      } catch (error) {
        const waitMs = retryDelayMs(attempt);
        this.log.warn(
          { runId: event.runId, eventType: event.type, attempt, retryInMs: waitMs, err: error },
          'event publish failed, will retry',
        );
        await delay(waitMs, this.abort);
      }
    }
  }
}

/** The outcome of appending an event that must be the first one on its run's subject. */
export type FirstEventAppend = 'appended' | 'already-decided';

/**
 * Appends `event` only if its run's subject holds no event yet (`lastSubjectSequence: 0`),
 * as the schedulers append a claim or a refusal: the first event on a run's subject decides
 * the run. `already-decided` when the run has an event (a claim by a scheduler, another
 * end) or the log already has this very event (its `Nats-Msg-Id`, stored by an earlier
 * attempt or by the starter that ran the run). One attempt: other failures are thrown.
 */
export async function appendFirstEvent(
  js: JetStreamClient,
  naming: Naming,
  event: RunLifecycleEvent,
  timeoutMs = 5_000,
): Promise<FirstEventAppend> {
  const payload = encodeEvent(event);
  try {
    const ack = await js.publish(subjects.lifecycle(naming, event.runId), payload, {
      msgID: messageIdFor(event.runId, event.type),
      expect: { lastSubjectSequence: 0 },
      timeout: timeoutMs,
    });
    return ack.duplicate ? 'already-decided' : 'appended';
  } catch (error) {
    if (isWrongLastSequence(error)) return 'already-decided';
    throw error;
  }
}
