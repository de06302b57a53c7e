import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { MikroORM } from '@mikro-orm/mariadb';
import { encodeEvent, outputTexts, type RunRequested, subjects } from '@pipeline/events';
import type { Logger } from 'pino';
import { inTransaction, type Sql } from '../db/sql.ts';
import { localDate } from '../http/runView.ts';
import {
  EventLogUnavailableError,
  isWrongLastSequence,
  type RunEventLog,
} from '../messaging/eventLog.ts';
import { insertRequestedRun } from '../projection/runRows.ts';
import type { SeaTableClient } from '../seatable/seatableClient.ts';
import { isGroupOwner, type Submission } from './parseSubmission.ts';
import { PendingRowWriter } from './pendingRows.ts';

/** How long an accepted submission waits for its pending row before it answers anyway. */
const pendingRowWaitMs = 1500;

/**
 * A last-sequence expectation no stream reaches: a publish carrying it is stored by no
 * server, so it can only come back as a duplicate of an earlier message with its id.
 */
const unreachableSequence = Number.MAX_SAFE_INTEGER;

export interface RunAdmissionDeps {
  orm: MikroORM;
  eventLog: RunEventLog;
  seatable: SeaTableClient;
  /** The zone whose calendar month the quota counts (`TIME_ZONE`). */
  timeZone: string;
  logger: Logger;
  now?: () => Date;
}

export interface AdmissionOptions {
  /** The client's `Idempotency-Key`: a resend returns the first run's id. */
  idempotencyKey?: string;
  /** Aborted when the caller stopped waiting: nothing may be appended after that. */
  signal?: AbortSignal;
}

export type AdmissionResult =
  | { outcome: 'accepted'; runId: number; duplicate: boolean }
  | { outcome: 'refused'; message: string }
  /** The `Idempotency-Key` was first used for another submission (another base, script…). */
  | { outcome: 'key-reused'; runId: number; message: string };

/**
 * Admits a submission: checks the monthly quota, appends `RunRequested` and writes the
 * pending row. With a limit, queued and running runs count as used and the check, the
 * append and the row happen under a lock on the owner, so N concurrent submissions with one
 * run left admit exactly one (BC-13).
 */
export class RunAdmission {
  private readonly deps: RunAdmissionDeps;
  private readonly now: () => Date;
  private readonly pendingRows: PendingRowWriter;

  constructor(deps: RunAdmissionDeps) {
    this.deps = deps;
    this.now = deps.now ?? (() => new Date());
    this.pendingRows = new PendingRowWriter(deps.orm);
  }

  async admit(submission: Submission, options: AdmissionOptions = {}): Promise<AdmissionResult> {
    const limit = await this.monthlyLimit(submission);
    if (limit === 'refused') return { outcome: 'refused', message: outputTexts.quotaExceeded };

    const event = this.requestEvent(submission);
    const messageId = options.idempotencyKey
      ? `req-${options.idempotencyKey}`
      : `req-${randomUUID()}`;
    const result =
      limit === null
        ? await this.appendUnlimited(event, messageId, options.signal)
        : await this.appendWithinLimit(submission, limit, event, messageId, options);
    if (result.outcome !== 'accepted' || !result.duplicate) return result;
    return await this.answerResend(result.runId, event, options.idempotencyKey !== undefined);
  }

  /**
   * A resend (an `Idempotency-Key` seen before, or a retried transaction) gets the first
   * run's id only if it asks for the same run: a key used again for another base, script,
   * owner or context is refused, so that a client reusing keys by mistake learns it instead
   * of being told a run it did not ask for was its own. Its pending row is written from the
   * first request, never from the resend: the resend's time is not the run's, and a row
   * written with it before the projector got there would stay so in the live table but not
   * in a rebuild. When the first request cannot be read back (the log is unreachable), the
   * resend gets the id and the projector writes the row.
   */
  private async answerResend(
    runId: number,
    event: RunRequested,
    keyed: boolean,
  ): Promise<AdmissionResult> {
    const accepted = { outcome: 'accepted', runId, duplicate: true } as const;
    const stored = await this.deps.eventLog.readRequest(runId).catch((error: unknown) => {
      this.deps.logger.warn({ err: error, runId }, 'resend not compared with its first request');
      return null;
    });
    if (!stored?.event) return accepted;
    const first = stored.event.data;
    const again = event.data;
    const same =
      first.dtableUuid === again.dtableUuid &&
      first.scriptName === again.scriptName &&
      first.owner === again.owner &&
      first.orgId === again.orgId &&
      first.operateFrom === again.operateFrom &&
      isDeepStrictEqual(first.contextData, again.contextData);
    if (same || !keyed) {
      await this.writePendingRow(runId, stored.event);
      return accepted;
    }
    this.deps.logger.info({ runId }, 'Idempotency-Key reused for another submission, refused');
    return {
      outcome: 'key-reused',
      runId,
      message: `Idempotency-Key already used for run ${runId}, a different submission; use a new key for a new run`,
    };
  }

  /** Null when the owner is not limited; `refused` when SeaTable cannot say what the limit is. */
  private async monthlyLimit(submission: Submission): Promise<number | null | 'refused'> {
    if (isGroupOwner(submission.owner) || submission.scriptsRunningLimit === -1) return null;
    if (submission.scriptsRunningLimit > 0) return submission.scriptsRunningLimit;

    const answer = await this.deps.seatable.scriptsRunningLimit(submission.owner, submission.orgId);
    if (answer.outcome === 'error') {
      this.deps.logger.warn({ reason: answer.reason }, 'scripts running limit unavailable');
      return 'refused';
    }
    return answer.limit === -1 ? null : answer.limit;
  }

  private requestEvent(submission: Submission): RunRequested {
    return {
      type: 'RunRequested',
      schemaVersion: 1,
      occurredAt: this.now().toISOString(),
      data: {
        dtableUuid: submission.dtableUuid,
        scriptName: submission.scriptName,
        owner: submission.owner,
        orgId: submission.orgId,
        contextData: submission.contextData,
        operateFrom: submission.operateFrom,
        operator: submission.operator,
      },
    };
  }

  private async appendUnlimited(
    event: RunRequested,
    messageId: string,
    signal?: AbortSignal,
  ): Promise<AdmissionResult> {
    signal?.throwIfAborted();
    const appended = await this.deps.eventLog.appendRequest(event, messageId);
    // A resend's row is written from the first request (answerResend).
    if (!appended.duplicate) await this.writePendingRow(appended.seq, event);
    return { outcome: 'accepted', runId: appended.seq, duplicate: appended.duplicate };
  }

  /**
   * The projector writes the same row from the log; this one is there for a GET that comes
   * before the projector has caught up. The run is accepted once it is in the log, so a
   * database outage here delays the row, it does not undo the run: the answer waits for the
   * row a moment at most.
   */
  private async writePendingRow(runId: number, event: RunRequested): Promise<void> {
    const written = this.pendingRows.write(runId, event).then(
      () => true,
      (error: unknown) => {
        this.deps.logger.warn({ err: error, runId }, 'pending row left to the projector');
        return false;
      },
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      written,
      new Promise((resolve) => (timer = setTimeout(resolve, pendingRowWaitMs))),
    ]);
    clearTimeout(timer);
  }

  private async appendWithinLimit(
    submission: Submission,
    limit: number,
    event: RunRequested,
    messageId: string,
    options: AdmissionOptions,
  ): Promise<AdmissionResult> {
    const { signal } = options;
    // A retried transaction (deadlock victim) publishes with the same message id, so
    // JetStream answers with the sequence of the first attempt instead of a second run.
    return await inTransaction(this.deps.orm, async (sql) => {
      await lockQuotaOwner(sql, quotaOwnerKey(submission));
      const used = await this.runsUsedThisMonth(sql, submission);
      if (used >= limit) {
        // A resend of a submission that used the month's last run must get that run's id.
        const first = await this.firstRunWithMessageId(event, messageId, options);
        if (first !== null) return { outcome: 'accepted', runId: first, duplicate: true } as const;
        this.deps.logger.info({ used, limit }, 'run refused over the monthly limit');
        return { outcome: 'refused', message: outputTexts.quotaExceeded } as const;
      }
      signal?.throwIfAborted();
      const appended = await this.deps.eventLog.appendRequest(event, messageId);
      // A resend's row is written from the first request (answerResend).
      if (!appended.duplicate) await insertRequestedRun(sql, appended.seq, event);
      return { outcome: 'accepted', runId: appended.seq, duplicate: appended.duplicate } as const;
    });
  }

  /**
   * The id of the run first submitted with this `Idempotency-Key`, or null when there is
   * none within the log's duplicate window. JetStream checks a message id before it checks
   * the expected last sequence, so a publish that expects an unreachable sequence answers
   * "duplicate" with the first run's sequence when the key was used, and stores nothing
   * otherwise. No key, no first run.
   */
  private async firstRunWithMessageId(
    event: RunRequested,
    messageId: string,
    options: AdmissionOptions,
  ): Promise<number | null> {
    if (!options.idempotencyKey) return null;
    options.signal?.throwIfAborted();
    try {
      const ack = await this.deps.eventLog.jetStream.publish(
        subjects.requested(this.deps.eventLog.naming),
        encodeEvent(event),
        { msgID: messageId, expect: { lastSequence: unreachableSequence } },
      );
      return ack.duplicate ? ack.seq : null;
    } catch (error) {
      if (isWrongLastSequence(error)) return null;
      throw new EventLogUnavailableError(
        `cannot look up the Idempotency-Key: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  /** Finished runs of this month (statistics) plus the owner's queued and running runs. */
  private async runsUsedThisMonth(sql: Sql, submission: Submission): Promise<number> {
    const month = monthRange(this.now(), this.deps.timeZone);
    const byOrg = submission.orgId !== -1;
    const [finished] = await sql.all<{ runs: number | string | null }>(
      byOrg
        ? `SELECT COALESCE(SUM(total_run_count), 0) AS runs FROM org_run_script_statistics
           WHERE org_id = ? AND run_date >= ? AND run_date < ?`
        : `SELECT COALESCE(SUM(total_run_count), 0) AS runs FROM user_run_script_statistics
           WHERE username = ? AND run_date >= ? AND run_date < ?`,
      [byOrg ? submission.orgId : submission.owner, month.first, month.next],
    );
    const [active] = await sql.all<{ runs: number | string }>(
      byOrg
        ? `SELECT COUNT(*) AS runs FROM script_log WHERE org_id = ? AND state IN ('pending', 'running')`
        : `SELECT COUNT(*) AS runs FROM script_log WHERE owner = ? AND state IN ('pending', 'running')`,
      [byOrg ? submission.orgId : submission.owner],
    );
    return Number(finished?.runs ?? 0) + Number(active?.runs ?? 0);
  }
}

/** The quota is the org's when there is one, the user's otherwise. */
export function quotaOwnerKey(submission: Pick<Submission, 'owner' | 'orgId'>): string {
  return submission.orgId !== -1 ? `org:${submission.orgId}` : `user:${submission.owner}`;
}

/**
 * Serialises the admissions of one owner. `INSERT IGNORE` followed by `SELECT ... FOR
 * UPDATE` deadlocks when several transactions create the same new row at once (each holds
 * a shared lock from the duplicate-key check and waits for the others); the upsert takes the
 * exclusive lock directly. The `FOR UPDATE` keeps the lock explicit for the reader.
 */
async function lockQuotaOwner(sql: Sql, ownerKey: string): Promise<void> {
  await sql.run(
    `INSERT INTO quota_owner (owner_key) VALUES (?) ${sql.dialect.onConflictIgnore(['owner_key'])}`,
    [ownerKey],
  );
  await sql.all(`SELECT owner_key FROM quota_owner WHERE owner_key = ?${sql.dialect.forUpdate}`, [
    ownerKey,
  ]);
}

/** This calendar month in `timeZone` as a half-open date range: `[first, next)`. */
export function monthRange(instant: Date, timeZone: string): { first: string; next: string } {
  const [year, month] = localDate(instant, timeZone).split('-').map(Number) as [number, number];
  const nextYear = month === 12 ? year + 1 : year;
  const nextMonth = month === 12 ? 1 : month + 1;
  return {
    first: `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}-01`,
    next: `${String(nextYear).padStart(4, '0')}-${String(nextMonth).padStart(2, '0')}-01`,
  };
}
