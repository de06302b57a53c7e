import type { Msg, NatsConnection, Subscription } from '@nats-io/nats-core';
import {
  type ClaimReply,
  type ClaimRequest,
  claimRequestSchema,
  decodeWith,
  encodeJson,
  endWithoutResult,
  isUsableReplyKey,
  outputTexts,
  queueGroups,
  type RunFinished,
  type RunRequested,
  sealFor,
  subjects,
} from '@pipeline/events';
import type { Logger } from 'pino';
import { EventLogUnavailableError, type RunEventLog } from '../messaging/eventLog.ts';
import type { SeaTableClient } from '../seatable/seatableClient.ts';

/** What the fair-share check says about one claim. */
export type FairShareDecision =
  | { decision: 'allow' }
  /** Over the share while others wait: the run is refused with the contract's text. */
  | { decision: 'reject' }
  /** Not now: the starter puts the request back for `delayMs`. */
  | { decision: 'defer'; delayMs: number };

export type FairShareCheck = (run: RunRequested, claim: ClaimRequest) => Promise<FairShareDecision>;

/** No fair share at all: what a responder without a policy does (tests of the claim itself). */
export const allowEveryClaim: FairShareCheck = async () => ({ decision: 'allow' });

export interface ClaimResponderDeps {
  connection: NatsConnection;
  eventLog: RunEventLog;
  seatable: SeaTableClient;
  /** `SEATABLE_SERVER_URL`: what scripts see as `dtable_web_url`. */
  dtableWebUrl: string;
  /** `PYTHON_PROCESS_TIMEOUT`. */
  timeoutSeconds: number;
  logger: Logger;
  decideFairShare?: FairShareCheck;
  now?: () => Date;
}

/** After this many deliveries with SeaTable unreachable, the run ends as `Failed`. */
export const maxDispatchAttempts = 5;
const logRetryDelayMs = 2000;

/**
 * Answers the starters' claim requests (docs/internals.md, "Claiming"), as one member of
 * the schedulers' queue group. The first event on a run's subject decides the run; every
 * decision is appended with `lastSubjectSequence: 0`, so of two concurrent claims exactly
 * one gets `run` and the other `drop`.
 */
export class ClaimResponder {
  private readonly deps: ClaimResponderDeps;
  private readonly logger: Logger;
  private readonly decideFairShare: FairShareCheck;
  private readonly now: () => Date;
  private subscription: Subscription | undefined;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(deps: ClaimResponderDeps) {
    this.deps = deps;
    this.logger = deps.logger.child({ component: 'claims' });
    this.decideFairShare = deps.decideFairShare ?? allowEveryClaim;
    this.now = deps.now ?? (() => new Date());
  }

  start(): void {
    if (this.subscription) return;
    this.subscription = this.deps.connection.subscribe(subjects.claims(this.deps.eventLog.naming), {
      queue: queueGroups.schedulers,
      callback: (error, message) => {
        if (error) {
          this.logger.error({ err: error }, 'claim subscription failed');
          return;
        }
        const handling = this.answer(message);
        this.inFlight.add(handling);
        void handling.finally(() => this.inFlight.delete(handling));
      },
    });
  }

  /** Stops taking claims and waits for the ones being answered. */
  async stop(): Promise<void> {
    const subscription = this.subscription;
    this.subscription = undefined;
    if (subscription && !subscription.isClosed()) await subscription.drain().catch(() => {});
    await Promise.allSettled([...this.inFlight]);
  }

  private async answer(message: Msg): Promise<void> {
    const decoded = decodeWith(claimRequestSchema, message.data);
    if (!decoded.ok) {
      this.logger.error({ reason: decoded.reason }, 'invalid claim request');
      this.reply(message, {
        decision: 'defer',
        delayMs: logRetryDelayMs,
        reason: 'invalid claim request',
      });
      return;
    }
    const claim = decoded.value;
    const log = this.logger.child({ runId: claim.runId, starterId: claim.starterId });
    if (claim.replyKey !== undefined && !isUsableReplyKey(claim.replyKey)) {
      // Before anything is decided: a grant that cannot be sealed is not sent plain either.
      log.error('claim not decided: the starter sent a reply key that is not an X25519 key');
      this.reply(message, {
        decision: 'defer',
        delayMs: logRetryDelayMs,
        reason: 'unusable reply key',
      });
      return;
    }
    let reply: ClaimReply;
    try {
      reply = await this.decide(claim, log);
    } catch (error) {
      const outage = error instanceof EventLogUnavailableError;
      log[outage ? 'warn' : 'error']({ err: error }, 'claim could not be decided');
      reply = {
        decision: 'defer',
        delayMs: logRetryDelayMs,
        reason: 'the scheduler could not decide now',
      };
    }
    log.info(
      { decision: reply.decision, reason: 'reason' in reply ? reply.reason : undefined },
      'claim answered',
    );
    this.reply(message, this.sealed(reply, claim, log));
  }

  /** The decision for one claim; appends the event that makes it final, if any. */
  async decide(claim: ClaimRequest, log: Logger = this.logger): Promise<ClaimReply> {
    const stored = await this.deps.eventLog.readRequest(claim.runId);
    if (!stored) return drop('no such run request in the log');
    if (!stored.event) {
      log.warn({ reason: stored.reason }, 'claimed message is not a valid run request');
      return drop('not a valid run request');
    }
    const request = stored.event;

    const last = await this.deps.eventLog.lastEventOf(claim.runId);
    if (last) {
      if (last.event?.type === 'RunCancelRequested') await this.finishCancelled(claim, last.seq);
      return drop('the run is already decided');
    }

    const fairShare = await this.decideFairShare(request, claim);
    if (fairShare.decision === 'defer') {
      return { decision: 'defer', delayMs: fairShare.delayMs, reason: 'over the fair share' };
    }
    if (fairShare.decision === 'reject') return await this.rejectOverFairShare(claim);

    return await this.dispatch(claim, request, log);
  }

  private async dispatch(
    claim: ClaimRequest,
    request: RunRequested,
    log: Logger,
  ): Promise<ClaimReply> {
    const file = await this.deps.seatable.scriptTaskFile(
      request.data.dtableUuid,
      request.data.scriptName,
    );
    if (file.outcome === 'not-found') {
      await this.deps.eventLog.appendIfUnchanged(
        this.dispatchFailure(claim.runId, outputTexts.scriptNotFound),
      );
      return drop('the script does not exist');
    }
    if (file.outcome === 'unavailable') {
      if (claim.deliveryCount >= maxDispatchAttempts) {
        log.warn(
          { reason: file.reason, deliveryCount: claim.deliveryCount },
          'run failed: SeaTable unavailable',
        );
        await this.deps.eventLog.appendIfUnchanged(
          this.dispatchFailure(claim.runId, outputTexts.failed),
        );
        return drop('SeaTable could not be reached');
      }
      log.warn(
        { reason: file.reason, deliveryCount: claim.deliveryCount },
        'SeaTable unavailable, claim deferred',
      );
      return {
        decision: 'defer',
        delayMs: dispatchBackoffMs(claim.deliveryCount),
        reason: 'SeaTable unavailable',
      };
    }

    const claimed = await this.deps.eventLog.appendIfUnchanged({
      type: 'RunClaimed',
      schemaVersion: 1,
      occurredAt: this.now().toISOString(),
      runId: claim.runId,
      data: {
        starterId: claim.starterId,
        host: claim.host,
        ...(claim.starterLife ? { starterLife: claim.starterLife } : {}),
      },
    });
    if (claimed.outcome === 'already-decided') return drop('the run is already decided');
    return {
      decision: 'run',
      scriptUrl: file.scriptUrl,
      apiToken: file.apiToken,
      dtableWebUrl: this.deps.dtableWebUrl,
      timeoutSeconds: this.deps.timeoutSeconds,
    };
  }

  private async rejectOverFairShare(claim: ClaimRequest): Promise<ClaimReply> {
    await this.deps.eventLog.appendIfUnchanged({
      type: 'RunRejected',
      schemaVersion: 1,
      occurredAt: this.now().toISOString(),
      runId: claim.runId,
      data: { reason: 'fair_share_exceeded', output: outputTexts.fairShareExceeded },
    });
    return drop('over the fair share');
  }

  /** A cancel that came before any claim ends the run here, so it does not stay pending. */
  private async finishCancelled(claim: ClaimRequest, cancelSequence: number): Promise<void> {
    const finished = this.dispatchFailure(claim.runId, outputTexts.cancelled);
    finished.data.cancelled = true;
    await this.deps.eventLog.appendIfUnchanged(finished, cancelSequence);
  }

  /** The end of a run that never started: no statistics count it. */
  private dispatchFailure(runId: number, output: string): RunFinished {
    return endWithoutResult({ runId, at: this.now(), output, starterId: null });
  }

  /**
   * A grant carries the run's temporary API token and script URL: sealed to the starter's
   * key (claimSeal.ts), since every starter may read the reply inboxes. A starter without a
   * key (older than sealing) gets it plain; one whose key is unusable is told to retry.
   */
  private sealed(reply: ClaimReply, claim: ClaimRequest, log: Logger): ClaimReply {
    if (reply.decision !== 'run' || !claim.replyKey) return reply;
    try {
      return { decision: 'sealed', sealed: sealFor(claim.replyKey, encodeJson(reply)) };
    } catch (error) {
      log.error({ err: error }, 'claim grant not sent: the starter sent an unusable reply key');
      return { decision: 'defer', delayMs: logRetryDelayMs, reason: 'unusable reply key' };
    }
  }

  private reply(message: Msg, reply: ClaimReply): void {
    if (!message.reply) return;
    try {
      message.respond(encodeJson(reply));
    } catch (error) {
      this.logger.warn({ err: error }, 'claim reply could not be sent');
    }
  }
}

function drop(reason: string): ClaimReply {
  return { decision: 'drop', reason };
}

/** 1 s, 2 s, 4 s, 8 s… capped at 30 s. */
export function dispatchBackoffMs(deliveryCount: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.max(0, deliveryCount - 1));
}
