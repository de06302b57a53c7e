import type { MikroORM } from '@mikro-orm/mariadb';
import type { ClaimRequest, RunRequested } from '@pipeline/events';
import type { Logger } from 'pino';
import { isDatabaseUnavailable } from '../db/dbErrors.ts';
import { sqlOf, toSqlDateTime } from '../db/sql.ts';
import type { SeaTableClient } from '../seatable/seatableClient.ts';
import type { FairShareCheck, FairShareDecision } from './claimResponder.ts';

/** Who a share belongs to: the org, or the user when the run has no org. */
export type ShareOwner = { kind: 'org'; orgId: number } | { kind: 'user'; username: string };

export function shareOwnerOf(run: RunRequested): ShareOwner {
  return run.data.orgId !== -1
    ? { kind: 'org', orgId: run.data.orgId }
    : { kind: 'user', username: run.data.owner };
}

function ownerFilter(owner: ShareOwner) {
  return owner.kind === 'org'
    ? { column: 'org_id', value: owner.orgId as number | string, userOnly: '' }
    : { column: 'owner', value: owner.username as number | string, userOnly: ' AND org_id = -1' };
}

function ownerKey(owner: ShareOwner): string {
  return owner.kind === 'org' ? `org:${owner.orgId}` : `user:${owner.username}`;
}

/** What the policy knows of the fleet and the owner at the moment of a claim. */
export interface ShareSnapshot {
  /** Slots of the live starters; at least 1 (a claim comes from a starter). */
  totalSlots: number;
  /** Seconds of run time the owner used inside the window, running runs included. */
  usedSeconds: number;
  /** The owner's runs that are running now. */
  runningNow: number;
  /** Other owners with runs waiting for a slot. */
  otherOwnersWaiting: number;
  /** The owner's own runs waiting for a slot. */
  ownerQueued: number;
}

export interface FairShareRules {
  windowSeconds: number;
  /** `PYTHON_SCHEDULER_RATE_LIMIT_PERCENT` as a share: 0.25 = a quarter of the capacity. */
  rateLimitShare: number;
  /**
   * How long a deferred run waits, per run its owner has queued: the starters must get
   * through the owner's whole queue to the other owners' runs before the first deferred
   * one comes back, or they would go round the head of the queue for ever.
   */
  deferMsPerQueuedRun: number;
  /** Bounds of that wait. */
  minDeferMs: number;
  maxDeferMs: number;
}

/**
 * The decision itself, pure:
 *
 * - over the share of the fleet's time in the window (window × slots × share): refused;
 * - holding at least an equal part of the slots while other owners wait: deferred, so a
 *   burst of one owner does not hold up everyone queued behind it (head-of-line);
 * - otherwise allowed.
 */
export function decideShare(snapshot: ShareSnapshot, rules: FairShareRules): FairShareDecision {
  const capacitySeconds = rules.windowSeconds * Math.max(1, snapshot.totalSlots);
  if (snapshot.usedSeconds > capacitySeconds * rules.rateLimitShare) return { decision: 'reject' };
  if (snapshot.otherOwnersWaiting > 0) {
    const equalPart = Math.max(
      1,
      Math.floor(snapshot.totalSlots / (snapshot.otherOwnersWaiting + 1)),
    );
    if (snapshot.runningNow >= equalPart) {
      const delayMs = Math.min(
        rules.maxDeferMs,
        Math.max(rules.minDeferMs, snapshot.ownerQueued * rules.deferMsPerQueuedRun),
      );
      return { decision: 'defer', delayMs };
    }
  }
  return { decision: 'allow' };
}

export interface FairSharePolicyDeps {
  orm: MikroORM;
  /** Slots of the live starters. */
  totalSlots: () => Promise<number>;
  seatable: Pick<SeaTableClient, 'notifyScriptsExceeded'>;
  /** Claims "the notification for this owner in this window", true only the first time. */
  claimNotification: (key: string, windowSeconds: number) => Promise<boolean>;
  rules: FairShareRules;
  logger: Logger;
  now?: () => Date;
}

/** How long a deferral of an owner is reused for its next claims. */
const deferralMemoryMs = 250;

/** Pending runs older than this are left out of "who is waiting": they are stuck, not queued. */
const waitingHorizonMs = 60 * 60 * 1000;

/** After the database failed to answer, how long claims go by without asking it again. */
const databaseAwayMs = 5_000;

/**
 * Fair share at claim time, over the read model and the fleet's heartbeats. While the
 * database cannot be reached, claims are let through in arrival order: fair share is a
 * courtesy between owners, the quota was already checked at admission, and runs must go on
 * during an outage of the read model.
 */
export class FairSharePolicy {
  private readonly deps: FairSharePolicyDeps;
  private readonly now: () => Date;
  private readonly recentDeferrals = new Map<
    string,
    { until: number; decision: FairShareDecision }
  >();
  private databaseAwayUntil = 0;

  constructor(deps: FairSharePolicyDeps) {
    this.deps = deps;
    this.now = deps.now ?? (() => new Date());
  }

  readonly check: FairShareCheck = async (run: RunRequested, claim: ClaimRequest) => {
    const owner = shareOwnerOf(run);
    const key = ownerKey(owner);
    const nowMs = this.now().getTime();
    // A deferred owner stays deferred for a moment: the starters then pass the rest of its
    // queued requests at the speed of a reply, not of four queries each, and reach the
    // other owners' runs behind them within about one slot's turn.
    const deferred = this.recentDeferrals.get(key);
    if (deferred && deferred.until > nowMs) return deferred.decision;

    if (this.databaseAwayUntil > nowMs) return { decision: 'allow' };
    let snapshot: ShareSnapshot;
    try {
      snapshot = await this.snapshot(owner, claim.runId);
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
      if (this.databaseAwayUntil === 0) {
        this.deps.logger.warn(
          { err: error, runId: claim.runId },
          'fair share cannot be checked: the database cannot be reached; runs are let through in arrival order until it answers again',
        );
      }
      this.databaseAwayUntil = nowMs + databaseAwayMs;
      return { decision: 'allow' };
    }
    if (this.databaseAwayUntil !== 0) {
      this.databaseAwayUntil = 0;
      this.deps.logger.info('fair share checked again: the database answers');
    }
    const decision = decideShare(snapshot, this.deps.rules);
    if (decision.decision === 'reject') this.notifyOnce(owner);
    if (decision.decision === 'defer') {
      if (this.recentDeferrals.size > 10_000) this.forgetExpiredDeferrals(nowMs);
      this.recentDeferrals.set(key, { until: nowMs + deferralMemoryMs, decision });
    } else {
      this.recentDeferrals.delete(key);
    }
    return decision;
  };

  private forgetExpiredDeferrals(nowMs: number): void {
    for (const [key, deferral] of this.recentDeferrals) {
      if (deferral.until <= nowMs) this.recentDeferrals.delete(key);
    }
  }

  async snapshot(owner: ShareOwner, runId: number): Promise<ShareSnapshot> {
    const now = this.now();
    const windowStart = new Date(now.getTime() - this.deps.rules.windowSeconds * 1000);
    const [totalSlots, usage, waiting] = await Promise.all([
      this.deps.totalSlots(),
      this.usage(owner, windowStart, now),
      this.otherOwnersWaiting(owner, runId, now),
    ]);
    return { totalSlots: Math.max(1, totalSlots), ...usage, otherOwnersWaiting: waiting };
  }

  /**
   * Run time inside the window: finished runs by the part of them after the window's start
   * (index range on finished_at), and running runs by their time so far.
   */
  private async usage(owner: ShareOwner, windowStart: Date, now: Date) {
    const { column, value, userOnly } = ownerFilter(owner);
    const sql = sqlOf(this.deps.orm);
    const { greatest, microsecondsBetween } = sql.dialect;
    const start = toSqlDateTime(windowStart);
    const end = toSqlDateTime(now);
    const [finished] = await sql.all<{ seconds: number | string | null }>(
      `SELECT SUM(${microsecondsBetween(greatest('started_at', '?'), 'finished_at')}) / 1000000 AS seconds
       FROM script_log
       WHERE ${column} = ?${userOnly} AND finished_at >= ? AND finished_at <= ? AND started_at IS NOT NULL`,
      [start, value, start, end],
    );
    const [running] = await sql.all<{ seconds: number | string | null; runs: number | string }>(
      `SELECT SUM(${microsecondsBetween(greatest('started_at', '?'), '?')}) / 1000000 AS seconds,
              COUNT(*) AS runs
       FROM script_log
       WHERE ${column} = ?${userOnly} AND state = 'running'`,
      [start, end, value],
    );
    // A claimed run holds its starter's slot before it starts (download, container): it is
    // not queued any more, and counts with the running ones. Without it an owner whose runs
    // are short gets more than its part of the slots while its runs are between claim and
    // start (the head-of-line test in test/e2e/fairness.e2e.test.ts).
    const [open] = await sql.all<{
      queued: number | string | null;
      claimed: number | string | null;
    }>(
      `SELECT SUM(CASE WHEN d.starter_id IS NULL THEN 1 ELSE 0 END) AS queued,
              SUM(CASE WHEN d.starter_id IS NULL THEN 0 ELSE 1 END) AS claimed
       FROM script_log s LEFT JOIN run_detail d ON d.run_id = s.id
       WHERE s.${column} = ?${userOnly.replace('org_id', 's.org_id')} AND s.state = 'pending'`,
      [value],
    );
    return {
      usedSeconds: Number(finished?.seconds ?? 0) + Number(running?.seconds ?? 0),
      runningNow: Number(running?.runs ?? 0) + Number(open?.claimed ?? 0),
      ownerQueued: Number(open?.queued ?? 0),
    };
  }

  private async otherOwnersWaiting(owner: ShareOwner, runId: number, now: Date): Promise<number> {
    const since = toSqlDateTime(new Date(now.getTime() - waitingHorizonMs));
    const rows = await sqlOf(this.deps.orm).all<{ org_id: number | null; owner: string | null }>(
      `SELECT DISTINCT s.org_id, s.owner FROM script_log s LEFT JOIN run_detail d ON d.run_id = s.id
       WHERE s.state = 'pending' AND s.created_at >= ? AND s.id <> ? AND d.starter_id IS NULL
       LIMIT 200`,
      [since, runId],
    );
    const mine = ownerKey(owner);
    const others = new Set<string>();
    for (const row of rows) {
      const key =
        row.org_id !== null && row.org_id !== -1 ? `org:${row.org_id}` : `user:${row.owner ?? ''}`;
      if (key !== mine) others.add(key);
    }
    return others.size;
  }

  /** SeaTable hears of an owner over its share once per window; a failure never blocks runs. */
  private notifyOnce(owner: ShareOwner): void {
    const windowSeconds = this.deps.rules.windowSeconds;
    const window = Math.floor(this.now().getTime() / (windowSeconds * 1000));
    const key = `${ownerKey(owner)}@${window}`;
    void (async () => {
      if (!(await this.deps.claimNotification(key, windowSeconds))) return;
      const target =
        owner.kind === 'org' ? { orgIds: [owner.orgId] } : { owners: [owner.username] };
      const outcome = await this.deps.seatable.notifyScriptsExceeded(target);
      if (outcome.outcome === 'error') {
        this.deps.logger.warn(
          { owner: ownerKey(owner), reason: outcome.reason },
          'fair share notification to SeaTable failed',
        );
      } else {
        this.deps.logger.info(
          { owner: ownerKey(owner) },
          'SeaTable notified of an owner over its fair share',
        );
      }
    })().catch((error: unknown) =>
      this.deps.logger.warn(
        { err: error, owner: ownerKey(owner) },
        'fair share notification failed',
      ),
    );
  }
}
