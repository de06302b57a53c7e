import type { MikroORM } from '@mikro-orm/mariadb';
import { type ConsumerMessages, DeliverPolicy, type JsMsg } from '@nats-io/jetstream';
import {
  decodeLogEvent,
  type LogEvent,
  type RunFinished,
  type RunRejected,
  runIdFromLifecycleSubject,
  subjects,
} from '@pipeline/events';
import type { Logger } from 'pino';
import { inTransaction, sqlOf } from '../db/sql.ts';
import type { RunEventLog } from '../messaging/eventLog.ts';
import { readCheckpoint, writeCheckpoint } from './checkpoint.ts';
import { ProjectionBatch, type ProjectionContext } from './projectionBatch.ts';

export interface RunProjectionDeps {
  orm: MikroORM;
  eventLog: RunEventLog;
  timeZone: string;
  logger: Logger;
  /** Events applied per transaction at most (a backlog goes in batches this big). @default 5000 */
  batchSize?: number;
  /**
   * Told the runs' ends each batch applied, once it is committed (the scheduler's metrics
   * count runs): a redelivered or forged second end of a run is not among them.
   */
  onCommitted?: (ends: readonly (RunFinished | RunRejected)[]) => void;
  /**
   * Apply nothing after this sequence (a rebuild's target): later events are left out, and
   * the projection counts as at `until` once the log has shown what comes after it.
   */
  until?: number;
}

const retryDelaysMs = [250, 500, 1000, 2000, 5000];

/**
 * Projects the whole log into MariaDB. It resumes after the checkpoint with an ordered
 * consumer (no durable state on the server), and applies what arrived as one transaction
 * that also moves the checkpoint, so a crash, an outage or a redelivery can neither skip an
 * event nor count one twice (BC-17). When NATS or MariaDB fail it starts over from the
 * checkpoint, with a back-off, until it is stopped.
 */
export class RunProjection {
  private readonly deps: RunProjectionDeps;
  private readonly logger: Logger;
  private readonly batchSize: number;
  private readonly context: ProjectionContext;
  private appliedThrough = 0;
  /** The last sequence the current consumer delivered and this projector committed. */
  private deliveredThrough = 0;
  private waiters: { seq: number; resolve: () => void }[] = [];
  /** The log went past `until` (or ended before it): nothing more is to be applied. */
  private pastUntil = false;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private messages: ConsumerMessages | undefined;
  private wake: (() => void) | undefined;
  private stopSignal = new AbortController();

  constructor(deps: RunProjectionDeps) {
    this.deps = deps;
    this.logger = deps.logger.child({ component: 'projection' });
    this.batchSize = deps.batchSize ?? 5000;
    this.context = { timeZone: deps.timeZone, logger: this.logger };
  }

  /** The last stream sequence applied and committed by this projector. */
  get position(): number {
    return this.appliedThrough;
  }

  start(): void {
    if (this.loop) return;
    this.stopped = false;
    this.stopSignal = new AbortController();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopSignal.abort();
    await this.messages?.close().catch(() => {});
    this.wake?.();
    await this.loop;
    this.loop = undefined;
  }

  /** Resolves once the event at `seq` (and all before it) is in the read model. */
  async waitFor(seq: number): Promise<void> {
    if (this.appliedThrough >= seq) return;
    await new Promise<void>((resolve) => this.waiters.push({ seq, resolve }));
  }

  private async run(): Promise<void> {
    for (let failures = 0; !this.stopped; ) {
      try {
        await this.followFromCheckpoint();
        failures = 0;
      } catch (error) {
        if (this.stopped) break;
        const delayMs = retryDelaysMs[Math.min(failures, retryDelaysMs.length - 1)] ?? 5000;
        failures += 1;
        this.logger.warn(
          { err: error, attempt: failures, delayMs },
          'projection interrupted, resuming from the checkpoint',
        );
        await sleep(delayMs, this.stopSignal.signal);
      }
    }
  }

  private async followFromCheckpoint(): Promise<void> {
    const checkpoint = await readCheckpoint(sqlOf(this.deps.orm));
    this.advance(checkpoint);
    this.deliveredThrough = checkpoint;
    const { jetStream, naming } = this.deps.eventLog;
    // No subject filter: the stream holds only the log's subjects, and a filtered consumer
    // makes nats-server 2.9 count the pending messages by scanning the stream from the start
    // sequence, which takes seconds over a million events each time the projector resumes.
    const consumer = await jetStream.consumers.get(naming.stream, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: checkpoint + 1,
    });
    // Decoded as they arrive, so that decoding overlaps the database's work on the last batch.
    const arrived: ArrivedEvent[] = [];
    // Back-pressure: the consumer delivers as fast as NATS can, the database is slower. Past
    // a few batches in memory the consumer is closed; once they are applied, the projector
    // follows again from the checkpoint, so a long log never sits in memory as a whole.
    const flow = { paused: false };
    const highWaterMark = this.batchSize * 8;
    const messages = await consumer.consume({
      max_messages: 1024,
      callback: (message) => {
        const until = this.deps.until;
        if (until !== undefined && message.seq > until) {
          this.pastUntil = true;
          this.wake?.();
          return;
        }
        if (until !== undefined && message.info.pending === 0) this.pastUntil = true;
        arrived.push({
          seq: message.seq,
          pending: message.info.pending,
          event: this.eventOf(message),
        });
        if (!flow.paused && arrived.length >= highWaterMark) {
          flow.paused = true;
          void this.messages?.close().catch(() => {});
        }
        this.wake?.();
      },
    });
    this.messages = messages;
    if (flow.paused) void messages.close().catch(() => {});
    const closed = messages.closed().then((reason) => reason ?? new Error('consumer closed'));
    this.logger.info({ fromSequence: checkpoint + 1 }, 'projection following the log');
    try {
      await this.applyAsTheyArrive(arrived, closed, flow);
    } finally {
      this.messages = undefined;
      await messages.close().catch(() => {});
    }
  }

  private async applyAsTheyArrive(
    arrived: ArrivedEvent[],
    closed: Promise<Error>,
    flow: { paused: boolean },
  ): Promise<void> {
    let caughtUpLogged = false;
    while (!this.stopped) {
      if (arrived.length === 0) {
        if (this.pastUntil && this.deps.until !== undefined) this.advance(this.deps.until);
        const woken = new Promise<'woken'>((resolve) => {
          this.wake = () => resolve('woken');
        });
        const outcome = await Promise.race([woken, closed]);
        this.wake = undefined;
        if (outcome !== 'woken') {
          // Closed for back-pressure and drained: follow again from the checkpoint.
          if (this.stopped || flow.paused) return;
          throw outcome;
        }
        continue;
      }
      const batch = arrived.splice(0, this.batchSize);
      await this.applyBatch(batch);
      const last = batch[batch.length - 1];
      if (!caughtUpLogged && arrived.length === 0 && last?.pending === 0) {
        caughtUpLogged = true;
        this.logger.info({ position: this.appliedThrough }, 'projection caught up');
      }
    }
  }

  private async applyBatch(decoded: ArrivedEvent[]): Promise<void> {
    const applied = await inTransaction(this.deps.orm, async (sql) => {
      const checkpoint = await readCheckpoint(sql, { lock: true });
      // The tables went back behind what this consumer already delivered: a rebuild swapped
      // them in, or a backup was restored. Start over from their checkpoint, or the events
      // in between would be skipped.
      if (checkpoint < this.deliveredThrough) throw new CheckpointMovedBackError(checkpoint);
      const fresh = decoded.filter(({ seq }) => seq > checkpoint);
      const events = fresh.flatMap(({ seq, event }) => (event ? [{ seq, event }] : []));
      // A fresh batch per attempt: a retried transaction must not see rows of the failed one.
      const projection = await ProjectionBatch.load(sql, events, this.context);
      for (const event of events) projection.apply(event);
      await projection.write(sql);
      const last = fresh.at(-1)?.seq ?? checkpoint;
      if (last > checkpoint) await writeCheckpoint(sql, last);
      return { last, ends: projection.appliedEnds };
    });
    this.deliveredThrough = applied.last;
    this.advance(applied.last);
    if (applied.ends.length > 0) this.deps.onCommitted?.(applied.ends);
  }

  /** The decoded event, or null (logged) when the message is not a valid event where it is. */
  private eventOf(message: JsMsg): LogEvent | null {
    const { naming } = this.deps.eventLog;
    const where = { seq: message.seq, subject: message.subject };
    const decoded = decodeLogEvent(message.data);
    if (!decoded.ok) {
      this.logger.warn({ ...where, reason: decoded.reason }, 'malformed event skipped');
      return null;
    }
    const event = decoded.value;
    const expectedSubject =
      event.type === 'RunRequested'
        ? message.subject === subjects.requested(naming)
        : event.type === 'StatisticsImported'
          ? message.subject.startsWith(`${naming.prefix}.runs.imported.${event.data.table}.`)
          : runIdFromLifecycleSubject(naming, message.subject) === event.runId;
    if (!expectedSubject) {
      this.logger.warn({ ...where, type: event.type }, 'event on the wrong subject skipped');
      return null;
    }
    return event;
  }

  private advance(seq: number): void {
    if (seq <= this.appliedThrough) return;
    this.appliedThrough = seq;
    const ready = this.waiters.filter((waiter) => waiter.seq <= seq);
    this.waiters = this.waiters.filter((waiter) => waiter.seq > seq);
    for (const waiter of ready) waiter.resolve();
  }
}

/** A message of the log, decoded (null: not a valid event where it is, skipped). */
interface ArrivedEvent {
  seq: number;
  /** Messages after this one in the log when it was delivered. */
  pending: number;
  event: LogEvent | null;
}

/** The read model's checkpoint is behind this projector's consumer. */
class CheckpointMovedBackError extends Error {
  constructor(checkpoint: number) {
    super(`the read model's checkpoint moved back to ${checkpoint}`);
    this.name = 'CheckpointMovedBackError';
  }
}

/** Waits `ms`, or less when the projection is stopped meanwhile. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
