import {
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type JetStreamPublishOptions,
  jetstream,
  jetstreamManager,
  type MsgRequest,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import {
  decodeEvent,
  encodeEvent,
  isWrongLastSequence as isWrongLastSequenceError,
  messageIdFor,
  type Naming,
  type RunCancelRequested,
  type RunEvent,
  type RunLifecycleEvent,
  type RunRequested,
  subjects,
} from '@pipeline/events';

/** The event log cannot be written or read right now (NATS down, no JetStream, timeout). */
export class EventLogUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'EventLogUnavailableError';
  }
}

/** The event does not fit in one NATS message (the server's `max_payload`). */
export class EventTooLargeError extends Error {
  constructor(bytes: number, limit: number) {
    super(`the event has ${bytes} bytes, the NATS server takes at most ${limit}`);
    this.name = 'EventTooLargeError';
  }
}

/** The outcome of appending an event that must be the first (or next) one of its run. */
export type ConditionalAppend =
  | { outcome: 'appended'; seq: number }
  | { outcome: 'already-decided' };

export interface StoredRunRequest {
  seq: number;
  /** Null when the stored message is not a valid `RunRequested`; `reason` says why. */
  event: RunRequested | null;
  reason?: string;
}

export interface LastRunEvent {
  seq: number;
  event: RunEvent | null;
}

/** How long one publish or lookup may take before the caller hears "unavailable". */
const requestTimeoutMs = 4000;

/**
 * Appends run events to the JetStream log and reads single messages back. Every run event
 * carries `Nats-Msg-Id` = `messageIdFor(runId, type)`, so a retried publish is stored once.
 */
export class RunEventLog {
  readonly naming: Naming;
  private readonly connection: NatsConnection;
  private readonly client: JetStreamClient;
  private readonly manager: JetStreamManager;

  private constructor(connection: NatsConnection, manager: JetStreamManager, naming: Naming) {
    this.connection = connection;
    this.manager = manager;
    this.naming = naming;
    this.client = jetstream(connection, { timeout: requestTimeoutMs });
  }

  static async open(connection: NatsConnection, naming: Naming): Promise<RunEventLog> {
    const manager = await jetstreamManager(connection, { timeout: requestTimeoutMs });
    return new RunEventLog(connection, manager, naming);
  }

  get jetStream(): JetStreamClient {
    return this.client;
  }

  get jetStreamManager(): JetStreamManager {
    return this.manager;
  }

  /** Appends a run request; its stream sequence is the new run's id. */
  async appendRequest(
    event: RunRequested,
    messageId: string,
  ): Promise<{ seq: number; duplicate: boolean }> {
    const ack = await this.publish(subjects.requested(this.naming), event, { msgID: messageId });
    return { seq: ack.seq, duplicate: ack.duplicate };
  }

  /**
   * Appends an event only if it is the first on its run's subject (a claim, a refusal, a
   * dispatch failure) or, with `afterSequence`, only if nothing was appended since that
   * sequence. Otherwise someone else decided first: `already-decided`.
   */
  async appendIfUnchanged(event: RunLifecycleEvent, afterSequence = 0): Promise<ConditionalAppend> {
    try {
      const ack = await this.publish(subjects.lifecycle(this.naming, event.runId), event, {
        msgID: messageIdFor(event.runId, event.type),
        expect: { lastSubjectSequence: afterSequence },
      });
      // A duplicate means the same message id was stored before: by another scheduler for
      // another starter, or by us in an attempt whose answer was lost. Either way this
      // caller did not decide the run now.
      return ack.duplicate ? { outcome: 'already-decided' } : { outcome: 'appended', seq: ack.seq };
    } catch (error) {
      if (isWrongLastSequence(error)) return { outcome: 'already-decided' };
      throw error;
    }
  }

  /**
   * Tells the starter holding a run of its cancel, on the run's cancel subject (core NATS,
   * nothing stored): starters may read that subject, not the log. Call it after the append.
   */
  async notifyCancel(event: RunCancelRequested): Promise<void> {
    this.connection.publish(subjects.cancels(this.naming, event.runId), encodeEvent(event));
    await this.connection.flush();
  }

  /** Reads the message at `seq` and decodes it as a run request. Null when there is none. */
  async readRequest(seq: number): Promise<StoredRunRequest | null> {
    const stored = await this.guard('read the run request', () =>
      this.manager.streams.getMessage(this.naming.stream, { seq }),
    );
    if (!stored) return null;
    if (stored.subject !== subjects.requested(this.naming)) {
      return { seq, event: null, reason: `message ${seq} is on ${stored.subject}, not a request` };
    }
    const decoded = decodeEvent(stored.data);
    if (!decoded.ok) return { seq, event: null, reason: decoded.reason };
    if (decoded.value.type !== 'RunRequested') {
      return { seq, event: null, reason: `message ${seq} is a ${decoded.value.type}` };
    }
    return { seq, event: decoded.value };
  }

  /** The last event on a run's subject, or null when the run has none yet. */
  async lastEventOf(runId: number): Promise<LastRunEvent | null> {
    const stored = await this.guard('read the last run event', () =>
      this.manager.streams.getMessage(this.naming.stream, {
        last_by_subj: subjects.lifecycle(this.naming, runId),
      }),
    );
    if (!stored) return null;
    const decoded = decodeEvent(stored.data);
    return { seq: stored.seq, event: decoded.ok ? decoded.value : null };
  }

  /**
   * The first event on a run's subject: the one that decided it (a `RunClaimed`, or a
   * `RunRejected` before any claim). Null while nothing decided the run.
   */
  async decisionOf(runId: number): Promise<LastRunEvent | null> {
    const stored = await this.guard('read the run decision', () =>
      // STREAM.MSG.GET takes `next_by_subj` (NATS 2.9 and later); the client's type lists
      // it only for direct gets, so the request is passed as it is.
      this.manager.streams.getMessage(this.naming.stream, {
        seq: runId,
        next_by_subj: subjects.lifecycle(this.naming, runId),
      } as unknown as MsgRequest),
    );
    if (!stored) return null;
    const decoded = decodeEvent(stored.data);
    return { seq: stored.seq, event: decoded.ok ? decoded.value : null };
  }

  private async publish(
    subject: string,
    event: RunEvent,
    options: Partial<JetStreamPublishOptions>,
  ): Promise<{ seq: number; duplicate: boolean }> {
    const payload = encodeEvent(event);
    // Headers (message id, expectations) travel in the same message; keep room for them.
    const limit = (this.connection.info?.max_payload ?? Number.POSITIVE_INFINITY) - 1024;
    if (payload.length > limit) throw new EventTooLargeError(payload.length, limit);
    return await this.guard('append to the event log', () =>
      this.client.publish(subject, payload, { timeout: requestTimeoutMs, ...options }),
    );
  }

  /**
   * Fails at once while the connection is down instead of letting the client buffer the
   * request and deliver it after the caller has been told it failed (BC-16).
   */
  private async guard<T>(what: string, operation: () => Promise<T>): Promise<T> {
    if (this.connection.isClosed() || isReconnecting(this.connection)) {
      throw new EventLogUnavailableError(`cannot ${what}: not connected to NATS`);
    }
    try {
      return await operation();
    } catch (error) {
      if (error instanceof JetStreamApiError && !isUnavailableApiError(error)) throw error;
      throw new EventLogUnavailableError(`cannot ${what}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
}

function isReconnecting(connection: NatsConnection): boolean {
  // nats.js keeps the protocol handler's state private; `connected` is false between a
  // disconnect and the next successful reconnect.
  const protocol = (connection as unknown as { protocol?: { connected?: boolean } }).protocol;
  return protocol?.connected === false;
}

function isUnavailableApiError(error: JetStreamApiError): boolean {
  // 503 is JetStream's "no responders / temporarily unavailable"; 10008 is "cluster not ready".
  return error.status === 503 || error.code === 10008;
}

/** The same, also for the cause of an `EventLogUnavailableError`. */
export function isWrongLastSequence(error: unknown): boolean {
  return isWrongLastSequenceError(error instanceof EventLogUnavailableError ? error.cause : error);
}
