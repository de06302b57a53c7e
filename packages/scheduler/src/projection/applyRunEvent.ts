import type {
  RunClaimed,
  RunEvent,
  RunFinished,
  RunImported,
  RunOutputChunk,
  RunRejected,
  RunStarted,
} from '@pipeline/events';
import type { Logger } from 'pino';
import { type Sql, toSqlDateTime } from '../db/sql.ts';
import { localDate } from '../http/runView.ts';
import { isGroupOwner } from '../submission/parseSubmission.ts';
import { insertRequestedRun } from './runRows.ts';
import { StatisticsBatch } from './statisticsBatch.ts';

export interface ProjectionContext {
  /** `TIME_ZONE`: statistics count a run on the day it finished there. */
  timeZone: string;
  logger: Logger;
  /**
   * Where statistics rows go when a batch of events is applied together; the caller flushes
   * it in the same transaction. Without it each run's rows are written at once.
   */
  statistics?: StatisticsBatch;
}

/**
 * Applies one event of the log to the read model. Every step is idempotent and never moves
 * a run backwards (a late `RunStarted` does not reopen a finished run), so a batch that is
 * applied again after a crash changes nothing; the checkpoint makes that rare anyway.
 */
export async function applyRunEvent(
  sql: Sql,
  seq: number,
  event: RunEvent,
  context: ProjectionContext,
): Promise<void> {
  switch (event.type) {
    case 'RunRequested':
      await insertRequestedRun(sql, seq, event);
      if (event.data.operator !== null) await recordOperator(sql, seq, event.data.operator);
      return;
    case 'RunClaimed':
      return await applyClaimed(sql, event);
    case 'RunStarted':
      return await applyStarted(sql, event);
    case 'RunOutputChunk':
      return await applyOutputChunk(sql, event);
    case 'RunFinished':
      return await applyFinished(sql, event, context);
    case 'RunRejected':
      return await applyRejected(sql, event, context);
    case 'RunCancelRequested':
      // A request, not an end: the run stays as it is until its RunFinished {cancelled: true},
      // which the cancel route (unclaimed run), the claim (claimed, not yet asked) or the
      // starter (claimed or running) appends. No row changes; the log keeps it for the audit.
      context.logger.info({ runId: event.runId }, 'run cancel requested');
      return;
    case 'RunImported':
      return await applyImported(sql, event);
  }
}

/**
 * The adopted original's row, as it was. A row that is still there (the import itself, on
 * the database it came from) is left as it is; a rebuild writes it back.
 */
async function applyImported(sql: Sql, event: RunImported): Promise<void> {
  const row = event.data;
  const time = (value: string | null) => (value === null ? null : toSqlDateTime(value));
  await sql.run(
    `INSERT INTO script_log
       (id, dtable_uuid, owner, org_id, script_name, context_data, started_at, finished_at,
        success, return_code, output, operate_from, state, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ${sql.dialect.onConflictIgnore(['id'])}`,
    [
      event.runId,
      row.dtableUuid,
      row.owner,
      row.orgId,
      row.scriptName,
      row.contextData,
      time(row.startedAt),
      time(row.finishedAt),
      row.success,
      row.returnCode,
      row.output,
      row.operateFrom,
      row.state,
      time(row.createdAt),
    ],
  );
}

async function recordOperator(sql: Sql, runId: number, operator: string): Promise<void> {
  await sql.run(
    `INSERT INTO run_detail (run_id, operator) VALUES (?, ?)
     ${sql.dialect.onConflictUpdate(['run_id'], (incoming) => `operator = COALESCE(operator, ${incoming('operator')})`)}`,
    [runId, operator],
  );
}

async function applyClaimed(sql: Sql, event: RunClaimed): Promise<void> {
  await sql.run(
    `INSERT INTO run_detail (run_id, starter_id, claimed_at) VALUES (?, ?, ?)
     ${sql.dialect.onConflictUpdate(
       ['run_id'],
       (incoming) => `starter_id = COALESCE(starter_id, ${incoming('starter_id')}),
         claimed_at = COALESCE(claimed_at, ${incoming('claimed_at')})`,
     )}`,
    [event.runId, event.data.starterId, toSqlDateTime(event.occurredAt)],
  );
}

async function applyStarted(sql: Sql, event: RunStarted): Promise<void> {
  await sql.run(
    `UPDATE script_log SET state = 'running', started_at = ?
     WHERE id = ? AND (state IS NULL OR state = 'pending')`,
    [toSqlDateTime(event.occurredAt), event.runId],
  );
  await sql.run(
    `INSERT INTO run_detail (run_id, starter_id) VALUES (?, ?)
     ${sql.dialect.onConflictUpdate(['run_id'], (incoming) => `starter_id = COALESCE(starter_id, ${incoming('starter_id')})`)}`,
    [event.runId, event.data.starterId],
  );
}

async function applyOutputChunk(sql: Sql, event: RunOutputChunk): Promise<void> {
  // Kept only while the run is open: a chunk replayed after its run finished is not needed.
  await sql.run(
    `INSERT INTO run_output_chunk (run_id, chunk_index, text)
     SELECT id, ?, ? FROM script_log WHERE id = ? AND (state IS NULL OR state <> 'finished')
     ${sql.dialect.onConflictUpdate(['run_id', 'chunk_index'], (incoming) => `text = ${incoming('text')}`)}`,
    [event.data.index, event.data.text, event.runId],
  );
}

interface OpenRun {
  id: number;
  dtable_uuid: string;
  owner: string | null;
  org_id: number | null;
  state: string | null;
}

/** The run's row, locked, when it exists and is not finished yet; null otherwise (logged). */
async function openRunFor(
  sql: Sql,
  event: RunFinished | RunRejected,
  context: ProjectionContext,
): Promise<OpenRun | null> {
  const [run] = await sql.all<OpenRun>(
    `SELECT id, dtable_uuid, owner, org_id, state FROM script_log WHERE id = ?${sql.dialect.forUpdate}`,
    [event.runId],
  );
  if (!run) {
    context.logger.warn({ runId: event.runId, type: event.type }, 'end of an unknown run ignored');
    return null;
  }
  if (run.state === 'finished') {
    context.logger.warn(
      { runId: event.runId, type: event.type },
      'run already finished, event ignored',
    );
    return null;
  }
  return run;
}

async function applyFinished(
  sql: Sql,
  event: RunFinished,
  context: ProjectionContext,
): Promise<void> {
  const run = await openRunFor(sql, event, context);
  if (!run) return;
  const finished = event.data;
  const output = await assembleOutput(sql, event, context);

  await sql.run(
    `UPDATE script_log
     SET state = 'finished', success = ?, return_code = ?, output = ?, finished_at = ?,
         started_at = COALESCE(?, started_at)
     WHERE id = ?`,
    [
      finished.success,
      finished.returnCode,
      output,
      toSqlDateTime(finished.finishedAt),
      finished.startedAt === null ? null : toSqlDateTime(finished.startedAt),
      event.runId,
    ],
  );
  await sql.run('DELETE FROM run_output_chunk WHERE run_id = ?', [event.runId]);
  await sql.run(
    `INSERT INTO run_detail
       (run_id, starter_id, duration_ms, timed_out, out_of_memory, cancelled, lost, output_truncated)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ${sql.dialect.onConflictUpdate(
       ['run_id'],
       (incoming) => `starter_id = COALESCE(starter_id, ${incoming('starter_id')}),
         duration_ms = ${incoming('duration_ms')}, timed_out = ${incoming('timed_out')},
         out_of_memory = ${incoming('out_of_memory')}, cancelled = ${incoming('cancelled')},
         lost = ${incoming('lost')}, output_truncated = ${incoming('output_truncated')}`,
     )}`,
    [
      event.runId,
      finished.starterId,
      finished.durationMs,
      finished.timedOut,
      finished.outOfMemory,
      finished.cancelled,
      finished.lost,
      finished.outputTruncated,
    ],
  );
  // Only a run that really ran counts: not a dispatch failure, not a lost run.
  if (finished.startedAt !== null && !finished.lost) {
    await countRun(sql, run, finished.startedAt, finished.finishedAt, context);
  }
}

async function assembleOutput(
  sql: Sql,
  event: RunFinished,
  context: ProjectionContext,
): Promise<string> {
  if (event.data.outputChunks === 0) return event.data.output;
  const chunks = await sql.all<{ text: string }>(
    'SELECT text FROM run_output_chunk WHERE run_id = ? ORDER BY chunk_index',
    [event.runId],
  );
  if (chunks.length !== event.data.outputChunks) {
    context.logger.warn(
      { runId: event.runId, expected: event.data.outputChunks, found: chunks.length },
      'output chunks missing',
    );
  }
  return chunks.map((chunk) => chunk.text).join('') + event.data.output;
}

async function applyRejected(
  sql: Sql,
  event: RunRejected,
  context: ProjectionContext,
): Promise<void> {
  const run = await openRunFor(sql, event, context);
  if (!run) return;
  await sql.run(
    `UPDATE script_log SET state = 'finished', success = 0, return_code = -1, output = ?, finished_at = ?
     WHERE id = ?`,
    [event.data.output, toSqlDateTime(event.occurredAt), event.runId],
  );
  await sql.run('DELETE FROM run_output_chunk WHERE run_id = ?', [event.runId]);
  await sql.run(
    `INSERT INTO run_detail (run_id, rejected_reason) VALUES (?, ?)
     ${sql.dialect.onConflictUpdate(['run_id'], (incoming) => `rejected_reason = ${incoming('rejected_reason')}`)}`,
    [event.runId, event.data.reason],
  );
}

/**
 * +1 run and +run time on the day the run finished, per base, per org (unless -1) and per
 * user (unless a group), as the original's statistics tables hold them.
 */
async function countRun(
  sql: Sql,
  run: OpenRun,
  startedAt: string,
  finishedAt: string,
  context: ProjectionContext,
): Promise<void> {
  const finishedInstant = new Date(finishedAt);
  const seconds = Math.max(0, (finishedInstant.getTime() - new Date(startedAt).getTime()) / 1000);
  const runDate = localDate(finishedInstant, context.timeZone);
  const month = `${runDate.slice(0, 7)}-01`;
  const updateAt = toSqlDateTime(finishedInstant);
  const statistics = context.statistics ?? new StatisticsBatch();

  statistics.add('dtableDaily', [run.dtable_uuid, runDate, 1, seconds, updateAt]);
  statistics.add('dtableMonthly', [month, run.dtable_uuid, 1, seconds]);
  if (run.org_id !== null && run.org_id !== -1) {
    statistics.add('orgDaily', [run.org_id, runDate, 1, seconds, updateAt]);
    statistics.add('orgMonthly', [month, run.org_id, 1, seconds]);
  }
  if (run.owner && !isGroupOwner(run.owner)) {
    statistics.add('userDaily', [run.owner, run.org_id ?? -1, runDate, 1, seconds, updateAt]);
    statistics.add('userMonthly', [month, run.owner, 1, seconds]);
  }
  if (!context.statistics) await statistics.flush(sql);
}
