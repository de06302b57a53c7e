import type { MikroORM } from '@mikro-orm/mariadb';
import { type ConsumerMessages, DeliverPolicy, type JsMsg } from '@nats-io/jetstream';
import {
  decodeEvent,
  type RunEvent,
  type RunRequested,
  runIdFromLifecycleSubject,
  subjects,
} from '@pipeline/events';
import type { Logger } from 'pino';
import { inTransaction, sqlOf } from '../db/sql.ts';
import type { RunEventLog } from '../messaging/eventLog.ts';
import { applyRunEvent } from './applyRunEvent.ts';
import { readCheckpoint, writeCheckpoint } from './checkpoint.ts';
import { insertRequestedRuns } from './runRows.ts';
import { StatisticsBatch } from './statisticsBatch.ts';

export interface RunProjectionDeps {
  orm: MikroORM;
  eventLog: RunEventLog;
  timeZone: string;
  logger: Logger;
  /** Events applied per transaction at most. @default 500 */
  batchSize?: number;
  /** Told the events of each batch once it is committed (the scheduler's metrics count runs). */
  onCommitted?: (events: readonly RunEvent[]) => void;
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
  private appliedThrough = 0;
  /** The last sequence the current consumer delivered and this projector committed. */
  private deliveredThrough = 0;
  private waiters: { seq: number; resolve: () => void }[] = [];
  private stopped = false;
  private loop: Promise<void> | undefined;
  private messages: ConsumerMessages | undefined;
  private wake: (() => void) | undefined;
  private stopSignal = new AbortController();

  constructor(deps: RunProjectionDeps) {
    this.deps = deps;
    this.logger = deps.logger.child({ component: 'projection' });
    this.batchSize = deps.batchSize ?? 500;
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
    const consumer = await jetStream.consumers.get(naming.stream, {
      filter_subjects: subjects.all(naming),
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: checkpoint + 1,
    });
    const arrived: JsMsg[] = [];
    // Back-pressure: the consumer delivers as fast as NATS can, the database is slower. Past
    // a few batches in memory the consumer is closed; once they are applied, the projector
    // follows again from the checkpoint, so a long log never sits in memory as a whole.
    const flow = { paused: false };
    const highWaterMark = this.batchSize * 4;
    const messages = await consumer.consume({
      max_messages: 256,
      callback: (message) => {
        arrived.push(message);
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
    arrived: JsMsg[],
    closed: Promise<Error>,
    flow: { paused: boolean },
  ): Promise<void> {
    let caughtUpLogged = false;
    while (!this.stopped) {
      if (arrived.length === 0) {
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
      if (!caughtUpLogged && arrived.length === 0 && last?.info.pending === 0) {
        caughtUpLogged = true;
        this.logger.info({ position: this.appliedThrough }, 'projection caught up');
      }
    }
  }

  // TODO(#5): 9,200 events/s on a short backlog, 6,100 over a million (bench/projection.bench.ts),
  // below the 10,000 target: claims, starts and ends still take a few statements each.
  private async applyBatch(batch: JsMsg[]): Promise<void> {
    const applied = await inTransaction(this.deps.orm, async (sql) => {
      // A fresh batch per attempt: a retried transaction must not see rows of the failed one.
      const statistics = new StatisticsBatch();
      const context = { timeZone: this.deps.timeZone, logger: this.logger, statistics };
      const checkpoint = await readCheckpoint(sql, { lock: true });
      // The tables went back behind what this consumer already delivered: a rebuild swapped
      // them in, or a backup was restored. Start over from their checkpoint, or the events
      // in between would be skipped.
      if (checkpoint < this.deliveredThrough) throw new CheckpointMovedBackError(checkpoint);
      const events: RunEvent[] = [];
      // Consecutive requests (a burst of submissions) go in one INSERT, written before any
      // later event of the batch, which may be about one of them.
      let requested: { runId: number; event: RunRequested }[] = [];
      const writeRequested = async () => {
        if (requested.length === 0) return;
        await insertRequestedRuns(sql, requested);
        requested = [];
      };
      let last = checkpoint;
      for (const message of batch) {
        if (message.seq <= last) continue;
        const event = this.eventOf(message);
        if (event?.type === 'RunRequested' && event.data.operator === null) {
          requested.push({ runId: message.seq, event });
          events.push(event);
        } else if (event) {
          await writeRequested();
          await applyRunEvent(sql, message.seq, event, context);
          events.push(event);
        }
        last = message.seq;
      }
      await writeRequested();
      await statistics.flush(sql);
      if (last > checkpoint) await writeCheckpoint(sql, last);
      return { last, events };
    });
    this.deliveredThrough = applied.last;
    this.advance(applied.last);
    if (applied.events.length > 0) this.deps.onCommitted?.(applied.events);
  }

  /** The decoded event, or null (logged) when the message is not a valid event where it is. */
  private eventOf(message: JsMsg): RunEvent | null {
    const { naming } = this.deps.eventLog;
    const where = { seq: message.seq, subject: message.subject };
    const decoded = decodeEvent(message.data);
    if (!decoded.ok) {
      this.logger.warn({ ...where, reason: decoded.reason }, 'malformed event skipped');
      return null;
    }
    const event = decoded.value;
    const expectedSubject =
      event.type === 'RunRequested'
        ? message.subject === subjects.requested(naming)
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
