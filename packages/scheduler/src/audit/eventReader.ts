import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import {
  decodeEvent,
  decodeLogEvent,
  type LogEvent,
  type LogEventType,
  type Naming,
  runIdFromLifecycleSubject,
  subjects,
} from '@pipeline/events';
import type { RunIndex } from './runIndex.ts';

/** One message of the log as the audit shows it: where it is, when it was stored, what it says. */
export interface LoggedEvent {
  seq: number;
  /** When the log stored it (UTC, ISO 8601); the event's own `occurredAt` is inside. */
  time: string;
  subject: string;
  /** Null when the message is not a valid event; `reason` says why. */
  type: LogEventType | null;
  /** Null also for an adopted original's statistics, which belong to no run. */
  runId: number | null;
  event: LogEvent | null;
  reason?: string;
}

/** What to read. Every field narrows; none reads the whole log. */
export interface EventFilter {
  runId?: number;
  /** Canonical form (lower case, dashes). */
  dtableUuid?: string;
  owner?: string;
  orgId?: number;
  /** Stream time, inclusive. */
  since?: Date;
  /** Stream time, inclusive. */
  until?: Date;
  type?: LogEventType;
}

/** The part of the event log the reader needs. */
export interface LogAccess {
  naming: Naming;
  jetStream: JetStreamClient;
  jetStreamManager: JetStreamManager;
}

/** Who a run belongs to: what the filters by base, owner and org compare. */
interface RunIdentity {
  dtableUuid: string;
  owner: string | null;
  orgId: number | null;
}

/** Up to this many runs of an index lookup are read run by run, more by one scan. */
const runsReadOneByOne = 50;

/** Identities remembered while reading; older ones are looked up again when needed. */
const identityCacheSize = 50_000;

/**
 * Reads the log for the audit (the admin endpoints and `pipeline events`). A run's events are
 * its request (its id is the request's stream sequence) and its lifecycle subject. A filter
 * by base, owner or org needs each event's request: with a run index (the read model's
 * `audit_run`) it reads the matching runs one by one, and the log only after the read
 * model's checkpoint; without one, or with `since`, a range is read in order with an ordered
 * consumer and filtered here, holding no more than a bounded cache of identities.
 */
export class EventReader {
  private readonly log: LogAccess;
  private readonly index: RunIndex | undefined;
  private readonly identities = new Map<number, RunIdentity | null>();

  /** With `index`, a filter by base, owner or org reads only the matching runs' events. */
  constructor(log: LogAccess, index?: RunIndex) {
    this.log = log;
    this.index = index;
  }

  /** Every event matching the filter, in stream order. */
  async *events(filter: EventFilter = {}): AsyncGenerator<LoggedEvent> {
    const byIdentity =
      filter.dtableUuid !== undefined || filter.owner !== undefined || filter.orgId !== undefined;
    const events =
      filter.runId !== undefined
        ? this.runEvents(filter.runId)
        : byIdentity && this.index && !filter.since
          ? this.indexed(filter, this.index)
          : this.range(filter);
    for await (const logged of events) {
      if (await this.matches(logged, filter)) yield logged;
    }
  }

  /** The request and every lifecycle event of one run, in stream order. */
  async *runEvents(runId: number): AsyncGenerator<LoggedEvent> {
    const { naming, jetStreamManager } = this.log;
    const request = await jetStreamManager.streams.getMessage(naming.stream, { seq: runId });
    if (request && request.subject === subjects.requested(naming)) {
      yield this.describe(request.seq, request.time, request.subject, request.data);
    }
    const subject = subjects.lifecycle(naming, runId);
    const last = await jetStreamManager.streams.getMessage(naming.stream, {
      last_by_subj: subject,
    });
    if (!last) return;
    yield* this.scan(subject, { deliver_policy: DeliverPolicy.All }, last.seq);
  }

  /**
   * The events of the runs the index names, and of the runs requested after the read model's
   * checkpoint, in stream order: the same events a scan of the whole log finds. A few runs
   * are read one by one (their request and their subject); more, from the first of them on,
   * in order, which skips the log before it.
   */
  private async *indexed(filter: EventFilter, index: RunIndex): AsyncGenerator<LoggedEvent> {
    const { runIds, projectedThrough } = await index.runsOf(filter);
    const first = runIds[0] ?? projectedThrough + 1;
    if (runIds.length > runsReadOneByOne) {
      const indexedRuns = new Set(runIds);
      for await (const logged of this.range(filter, Math.min(first, projectedThrough + 1))) {
        const runId = logged.runId;
        if (runId === null) continue;
        // A run requested after the checkpoint is not indexed yet: `matches` checks its request.
        if (indexedRuns.has(runId) || runId > projectedThrough) yield logged;
      }
      return;
    }
    const found = new Map<number, LoggedEvent>();
    for (const runId of runIds) {
      for await (const logged of this.runEvents(runId)) found.set(logged.seq, logged);
    }
    for await (const logged of this.range(filter, projectedThrough + 1)) {
      found.set(logged.seq, logged);
    }
    for (const logged of [...found.values()].sort((left, right) => left.seq - right.seq)) {
      if (filter.until && new Date(logged.time).getTime() > filter.until.getTime()) continue;
      yield logged;
    }
  }

  private async *range(filter: EventFilter, fromSequence = 1): AsyncGenerator<LoggedEvent> {
    const { naming, jetStreamManager } = this.log;
    const { state } = await jetStreamManager.streams.info(naming.stream);
    if (state.messages === 0 || fromSequence > state.last_seq) return;
    if (filter.since && filter.since.getTime() > new Date(state.last_ts).getTime()) return;
    const start = filter.since
      ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: filter.since.toISOString() }
      : fromSequence > 1
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSequence }
        : { deliver_policy: DeliverPolicy.All };
    for await (const logged of this.scan(subjects.all(naming), start, state.last_seq)) {
      if (filter.until && new Date(logged.time).getTime() > filter.until.getTime()) return;
      yield logged;
    }
  }

  /** Messages on `subject` from `start` up to `lastSeq` (or what is there when it is gone). */
  private async *scan(
    subject: string,
    start:
      | { deliver_policy: typeof DeliverPolicy.All }
      | { deliver_policy: typeof DeliverPolicy.StartSequence; opt_start_seq: number }
      | { deliver_policy: typeof DeliverPolicy.StartTime; opt_start_time: string },
    lastSeq: number,
  ): AsyncGenerator<LoggedEvent> {
    const { naming, jetStream } = this.log;
    const consumer = await jetStream.consumers.get(naming.stream, {
      filter_subjects: subject,
      ...start,
    });
    const messages = await consumer.consume({ max_messages: 512 });
    try {
      for await (const message of messages) {
        yield this.describe(message.seq, message.time, message.subject, message.data);
        if (message.seq >= lastSeq) return;
        // Nothing pending before the last sequence: it was deleted, or the count is one an
        // ordered consumer reported before it caught up; the stream itself says which.
        if (message.info.pending === 0 && (await this.lastSequenceOn(subject)) <= message.seq) {
          return;
        }
      }
    } finally {
      await messages.close().catch(() => {});
    }
  }

  private async lastSequenceOn(subject: string): Promise<number> {
    const { naming, jetStreamManager } = this.log;
    if (subject === subjects.all(naming)) {
      return (await jetStreamManager.streams.info(naming.stream)).state.last_seq;
    }
    const last = await jetStreamManager.streams.getMessage(naming.stream, {
      last_by_subj: subject,
    });
    return last?.seq ?? 0;
  }

  private describe(seq: number, time: Date, subject: string, data: Uint8Array): LoggedEvent {
    const decoded = decodeLogEvent(data);
    const where = { seq, time: time.toISOString(), subject };
    if (!decoded.ok) {
      const runId = runIdFromLifecycleSubject(this.log.naming, subject);
      return { ...where, type: null, runId, event: null, reason: decoded.reason };
    }
    const event = decoded.value;
    const runId =
      event.type === 'RunRequested'
        ? seq
        : event.type === 'StatisticsImported'
          ? null
          : event.runId;
    if (event.type === 'RunRequested') this.remember(seq, event.data);
    if (event.type === 'RunImported') this.remember(event.runId, event.data);
    return { ...where, type: event.type, runId, event };
  }

  private async matches(logged: LoggedEvent, filter: EventFilter): Promise<boolean> {
    if (filter.type !== undefined && logged.type !== filter.type) return false;
    const byIdentity =
      filter.dtableUuid !== undefined || filter.owner !== undefined || filter.orgId !== undefined;
    if (!byIdentity) return true;
    if (logged.runId === null) return false;
    const identity = await this.identityOf(logged.runId);
    if (!identity) return false;
    return (
      (filter.dtableUuid === undefined || identity.dtableUuid === filter.dtableUuid) &&
      (filter.owner === undefined || identity.owner === filter.owner) &&
      (filter.orgId === undefined || identity.orgId === filter.orgId)
    );
  }

  /** The run's identity from the cache, or from its request in the log. */
  private async identityOf(runId: number): Promise<RunIdentity | null> {
    const known = this.identities.get(runId);
    if (known !== undefined) return known;
    const { naming, jetStreamManager } = this.log;
    const request = await jetStreamManager.streams.getMessage(naming.stream, { seq: runId });
    const decoded =
      request && request.subject === subjects.requested(naming) ? decodeEvent(request.data) : null;
    const identity =
      decoded?.ok && decoded.value.type === 'RunRequested' ? decoded.value.data : null;
    // A run without a request in the log (imported, or expired) is known once its
    // RunImported was read; until then it matches nothing.
    if (identity) this.remember(runId, identity);
    return identity ? (this.identities.get(runId) ?? null) : null;
  }

  private remember(runId: number, identity: RunIdentity): void {
    if (this.identities.size >= identityCacheSize) {
      const oldest = this.identities.keys().next().value;
      if (oldest !== undefined) this.identities.delete(oldest);
    }
    this.identities.set(runId, {
      dtableUuid: identity.dtableUuid,
      owner: identity.owner,
      orgId: identity.orgId,
    });
  }
}
