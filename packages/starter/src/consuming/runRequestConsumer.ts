import {
  type Consumer,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  jetstreamManager,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import {
  type ClaimKeys,
  consumerNames,
  decodeEvent,
  endWithoutResult,
  ensureStarterConsumer,
  ensureStream,
  isNotFound,
  type Naming,
  outputTexts,
  type RunFinished,
} from '@pipeline/events';
import type { Logger } from 'pino';
import { type CancelWatch, watchForCancel } from '../execution/cancelWatch.ts';
import type { RunAssignment } from '../execution/runExecution.ts';
import { appendFirstEvent, type FirstEventAppend } from '../publishing/runEventPublisher.ts';
import { delay, retryDelayMs } from '../retry.ts';
import { type ClaimAnswer, requestClaim } from './claimClient.ts';
import {
  maxUnreadableDeliveries,
  redeliveryDelayMs,
  requestDisposition,
  type UnreadableTiming,
  unreadableRequestDisposition,
} from './requestDisposition.ts';
import type { RunSlots } from './runSlots.ts';

/** How often a held request is kept alive; well inside the consumer's 10 s ack wait. */
const workingIntervalMs = 3_000;
/** How long one pull waits for requests before it is renewed. */
const fetchExpiresMs = 5_000;
/** Characters of the decoder's reason kept in the output of a run ended as unreadable. */
const maxReasonLength = 200;

export interface RunRequestConsumerOptions {
  nc: NatsConnection;
  js: JetStreamClient;
  naming: Naming;
  starterId: string;
  /** This process's life, sent with each claim (see the claim request schema). */
  starterLife?: string;
  /** The key pair grants are sealed to (claimSeal.ts); without it grants come plain. */
  claimKeys?: ClaimKeys;
  host: string;
  slots: RunSlots;
  log: Logger;
  /**
   * Resolves once the starter can run scripts (its Docker engine answers); no request is
   * fetched before. @default always ready
   */
  ready?: (signal: AbortSignal) => Promise<void>;
  /** Carries out a claimed run; resolves when its result is in the log. */
  execute: (assignment: RunAssignment, log: Logger) => Promise<void>;
  /**
   * When a request this starter cannot read is offered again, and when its run is ended
   * (requestDisposition.ts). @default 1 s doubling; 5 deliveries and 15 minutes
   */
  unreadableTiming?: UnreadableTiming;
}

/**
 * Pulls run requests from the starters' shared durable consumer, never more than there are
 * free slots, and claims each one before running it. A request is acknowledged only once a
 * scheduler answered `run` or `drop` (from then on the log owns the run); `defer` and no
 * answer put it back with a delay. A request it cannot read is put back for the other
 * starters a few times, then its run ends with a `RunFinished` (unless the run already has
 * events). NATS going away is an expected state: the loop backs off and retries, and
 * recreates the stream's consumer if it was deleted (BC-16).
 */
export class RunRequestConsumer {
  private readonly options: RunRequestConsumerOptions;
  private readonly log: Logger;
  private readonly stopping = new AbortController();
  private consumer: Consumer | null = null;
  private batch: ConsumerMessages | null = null;
  private loop: Promise<void> | null = null;

  constructor(options: RunRequestConsumerOptions) {
    this.options = options;
    this.log = options.log;
  }

  start(): void {
    this.loop ??= this.pullLoop();
  }

  /** Stops fetching; resolves once every request taken so far has run and been reported. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.batch?.close().catch(() => {});
    await this.loop;
    await this.options.slots.whenIdle();
  }

  private async pullLoop(): Promise<void> {
    const { slots } = this.options;
    let failures = 0;
    while (!this.stopping.signal.aborted) {
      await slots.whenFree(this.stopping.signal);
      await this.options.ready?.(this.stopping.signal);
      if (this.stopping.signal.aborted) break;
      try {
        const consumer = await this.ensureConsumer();
        const batch = await consumer.fetch({ max_messages: slots.free, expires: fetchExpiresMs });
        this.batch = batch;
        void this.watchStatus(batch);
        for await (const message of batch) this.accept(message);
        failures = 0;
      } catch (error) {
        failures++;
        this.consumer = null;
        const waitMs = retryDelayMs(failures, 500);
        const level = failures === 1 ? 'warn' : 'debug';
        this.log[level](
          { err: error, attempt: failures, retryInMs: waitMs },
          'pulling run requests failed',
        );
        await delay(waitMs, this.stopping.signal);
      } finally {
        this.batch = null;
      }
    }
  }

  /** The durable consumer; made again after a failure, in case the stream or it was deleted. */
  private async ensureConsumer(): Promise<Consumer> {
    if (this.consumer) return this.consumer;
    const { nc, js, naming } = this.options;
    const jsm = await jetstreamManager(nc);
    await createStreamIfMissing(jsm, naming);
    await ensureStarterConsumer(jsm, naming);
    this.consumer = await js.consumers.get(naming.stream, consumerNames.starters);
    this.log.debug({ stream: naming.stream, consumer: consumerNames.starters }, 'consumer ready');
    return this.consumer;
  }

  private async watchStatus(batch: ConsumerMessages): Promise<void> {
    try {
      for await (const status of batch.status()) {
        if (status.type === 'heartbeats_missed') {
          this.log.warn({ count: status.count }, 'consumer heartbeats missed');
        } else if (status.type === 'consumer_deleted' || status.type === 'consumer_not_found') {
          this.log.error({ status: status.type }, 'starter consumer is gone, recreating');
          this.consumer = null;
        }
      }
    } catch {
      // The status iterator ends with its batch.
    }
  }

  private accept(message: JsMsg): void {
    if (this.stopping.signal.aborted) {
      // Fetched while stopping: give it straight back to the other starters.
      this.settle(message, 'nak', () => message.nak());
      return;
    }
    this.options.slots.take();
    void this.handle(message)
      .catch((error: unknown) =>
        this.log.error({ err: error, runId: message.seq }, 'run handling failed'),
      )
      .finally(() => this.options.slots.release());
  }

  /**
   * Acks, naks and progress signals are plain publishes; on a closed connection they throw.
   * A lost one is harmless: the request comes back after the ack wait, and a claimed run is
   * then dropped by the scheduler.
   */
  private settle(message: JsMsg, what: string, signal: () => void): void {
    try {
      signal();
    } catch (error) {
      this.log.warn(
        { err: error, runId: message.seq, signal: what },
        'could not signal the request',
      );
    }
  }

  private async handle(message: JsMsg): Promise<void> {
    const runId = message.seq;
    const deliveryCount = message.info.deliveryCount;
    const log = this.log.child({ runId, streamSeq: runId, deliveryCount });

    const request = decodeEvent(message.data);
    if (!request.ok || request.value.type !== 'RunRequested') {
      const reason = request.ok
        ? `a ${request.value.type} event, not a RunRequested`
        : request.reason;
      await this.handleUnreadable(message, reason, log);
      return;
    }
    if (deliveryCount > 1) log.warn('run request redelivered');

    // Watching before the claim, so a cancel right after RunClaimed is not missed.
    const cancelWatch = await watchForCancel(this.options.nc, this.options.naming, runId, log);
    try {
      await this.claimAndRun(message, request.value.data.contextData, cancelWatch, log);
    } finally {
      cancelWatch.close();
    }
  }

  /**
   * A request this starter cannot read may still be a run a scheduler accepted, for example
   * one of a newer schema version written during a rolling upgrade. It goes back to the
   * fleet, where an upgraded starter may read it, until its `maxUnreadableDeliveries`th
   * delivery of a request at least `unreadableGiveUpAfterMs` old; then its run ends here with
   * a `RunFinished`, not started, saying so, appended only as the run's first event. A run
   * that already has events (a claim, a refusal, an end) is left as it is. Either way the
   * request is terminated.
   */
  private async handleUnreadable(message: JsMsg, reason: string, log: Logger): Promise<void> {
    const runId = message.seq;
    const deliveryCount = message.info.deliveryCount;
    const ageMs = Date.now() - message.time.getTime();
    const timing = this.options.unreadableTiming ?? {};
    const disposition = unreadableRequestDisposition(deliveryCount, ageMs, timing);
    if (disposition.action === 'nak') {
      this.settle(message, 'nak', () => message.nak(disposition.delayMs));
      log.warn(
        { reason, delayMs: disposition.delayMs, maxDeliveries: maxUnreadableDeliveries },
        `this starter cannot read run request ${runId}; it was given back to the other ` +
          `starters (an upgraded one may read it); after ${maxUnreadableDeliveries} ` +
          'deliveries its run ends as failed',
      );
      return;
    }

    let outcome: FirstEventAppend;
    try {
      outcome = await appendFirstEvent(
        this.options.js,
        this.options.naming,
        this.unreadableFinish(runId, reason),
      );
    } catch (error) {
      // Not stored, not refused: the log did not answer. The next delivery tries again.
      const retryInMs = redeliveryDelayMs(deliveryCount, timing.firstDelayMs);
      this.settle(message, 'nak', () => message.nak(retryInMs));
      log.warn(
        { err: error, reason, retryInMs },
        `could not end run ${runId}, whose request no starter could read; will try again`,
      );
      return;
    }
    if (outcome === 'appended') {
      log.error(
        { reason, deliveries: deliveryCount },
        `run ${runId} ended as failed: no starter could read its request in ` +
          `${deliveryCount} deliveries`,
      );
    } else {
      // TODO(#4): a run whose only event is a RunCancelRequested (the cancel route died
      // between its two appends) stays pending here; a claim would finish it as cancelled.
      log.warn(
        { reason, deliveries: deliveryCount },
        `run request ${runId} cannot be read, but the run already has events in the log ` +
          '(someone else decided it); the request is dropped and the run left as it is',
      );
    }
    // Without a reason: nats-server before 2.10 ignores a `+TERM` that carries one, and the
    // request would come back after the ack wait for ever. The reason is in the log line.
    this.settle(message, 'term', () => message.term());
  }

  /** The end of a run whose request could not be read: never started, counted nowhere. */
  private unreadableFinish(runId: number, reason: string): RunFinished {
    const detail =
      reason.length > maxReasonLength ? `${reason.slice(0, maxReasonLength - 1)}…` : reason;
    return endWithoutResult({
      runId,
      at: new Date(),
      output: `${outputTexts.unreadableRequest}\nReason: ${detail}`,
      starterId: this.options.starterId,
    });
  }

  private async claimAndRun(
    message: JsMsg,
    contextData: RunAssignment['contextData'],
    cancelWatch: CancelWatch,
    log: Logger,
  ): Promise<void> {
    const runId = message.seq;
    const deliveryCount = message.info.deliveryCount;
    const keepAlive = setInterval(
      () => this.settle(message, 'working', () => message.working()),
      workingIntervalMs,
    );
    let answer: ClaimAnswer;
    try {
      answer = await requestClaim(
        this.options.nc,
        this.options.naming,
        {
          runId,
          starterId: this.options.starterId,
          ...(this.options.starterLife ? { starterLife: this.options.starterLife } : {}),
          ...(this.options.claimKeys ? { replyKey: this.options.claimKeys.publicKey } : {}),
          host: this.options.host,
          deliveryCount,
        },
        this.options.claimKeys?.privateKey,
      );
    } finally {
      clearInterval(keepAlive);
    }

    const disposition = requestDisposition(answer, deliveryCount);
    if (disposition.action === 'nak') {
      this.settle(message, 'nak', () => message.nak(disposition.delayMs));
      const level = answer.decision === 'unanswered' ? 'warn' : 'debug';
      const reason = 'reason' in answer ? answer.reason : '';
      log[level]({ reason, delayMs: disposition.delayMs }, 'run request put back');
      return;
    }
    this.settle(message, 'ack', () => message.ack());
    if (answer.decision !== 'run') {
      log.info({ reason: answer.reason }, 'run request dropped');
      return;
    }
    log.info({ timeoutSeconds: answer.timeoutSeconds }, 'run claimed');
    await this.options.execute(
      { runId, contextData, grant: answer, cancel: cancelWatch.signal },
      log,
    );
  }
}

/**
 * Creates the log's stream with the default settings when it does not exist (a fresh
 * server, or a NATS restart that lost a memory stream). An existing stream is left as the
 * scheduler configured it.
 */
export async function createStreamIfMissing(jsm: JetStreamManager, naming: Naming): Promise<void> {
  const exists = await jsm.streams.info(naming.stream).then(
    () => true,
    (error: unknown) => {
      if (isNotFound(error)) return false;
      throw error;
    },
  );
  if (!exists) await ensureStream(jsm, naming);
}
