import type { MikroORM } from '@mikro-orm/mariadb';
import {
  encodeEvent,
  type ImportedStatisticsTable,
  importedStatisticsTables,
  outputPieces,
  type RunImported,
  type RunOutputChunk,
  type StatisticsImported,
  subjects,
} from '@pipeline/events';
import type { Logger } from 'pino';
import { type Sql, sqlOf, toSqlDateTime } from '../db/sql.ts';
import { isWrongLastSequence, type RunEventLog } from '../messaging/eventLog.ts';
import { importedStatisticsColumns } from '../projection/readModelRows.ts';

/**
 * Notes that the log of `stream` starts at `firstRunId` above an adopted original's rows, so
 * that those rows are imported into it. Written before the stream is created; a second
 * attempt (a crash in between, another scheduler) keeps the first note.
 */
export async function recordAdoption(
  orm: MikroORM,
  stream: string,
  firstRunId: number,
): Promise<void> {
  const sql = sqlOf(orm);
  await sql.run(
    `INSERT INTO pipeline_adoption (stream, first_run_id) VALUES (?, ?)
     ${sql.dialect.onConflictIgnore(['stream'])}`,
    [stream, firstRunId],
  );
}

export interface AdoptedHistoryDeps {
  orm: MikroORM;
  eventLog: RunEventLog;
  logger: Logger;
  now?: () => Date;
}

interface AdoptionRow {
  first_run_id: number | string;
  imported_through: number | string;
  imported_at: string | null;
}

/** Rows per `StatisticsImported` event, and runs read (and appended at once) per step. */
const statisticsRowsPerEvent = 500;
const runsPerStep = 500;

/**
 * Writes an adopted original's history into the log, once: its statistics rows as
 * `StatisticsImported` and each of its runs as a `RunImported`, so that a rebuild keeps
 * them. Each event goes to a subject of its own with `lastSubjectSequence: 0` (a run's own
 * subject for a run, table and part for statistics), so an event that is in the log already
 * (another scheduler, an attempt that crashed) is refused, and nothing is written twice
 * however often this runs. The note in `pipeline_adoption` says how far it got, so a restart
 * resumes, and once it is done it costs one SELECT.
 *
 * The scheduler runs it at start-up, before it serves: no run of the pipeline can be counted
 * before the original's statistics are in the log, which is what lets the projector write an
 * imported statistics row only when its key is missing (see `insertImportedStatistics`).
 */
export async function importAdoptedHistory(
  deps: AdoptedHistoryDeps,
): Promise<{ runs: number; statisticsRows: number } | null> {
  const sql = sqlOf(deps.orm);
  const stream = deps.eventLog.naming.stream;
  const [adoption] = await sql.all<AdoptionRow>(
    'SELECT first_run_id, imported_through, imported_at FROM pipeline_adoption WHERE stream = ?',
    [stream],
  );
  if (!adoption || adoption.imported_at !== null) return null;
  const logger = deps.logger.child({ component: 'adoption' });
  const now = (deps.now ?? (() => new Date()))();
  logger.info({ stream }, 'importing the adopted history into the event log');

  let statisticsRows = 0;
  for (const table of importedStatisticsTables) {
    statisticsRows += await importStatistics(sql, deps.eventLog, table, now);
  }
  const firstRunId = Number(adoption.first_run_id);
  let runs = 0;
  for (let after = Number(adoption.imported_through); ; ) {
    const rows = await sql.all<OriginalRun>(
      `SELECT ${originalRunColumns} FROM script_log WHERE id > ? AND id < ? ORDER BY id LIMIT ?`,
      [after, firstRunId, runsPerStep],
    );
    if (rows.length === 0) break;
    await Promise.all(rows.map((row) => appendImportedRun(deps.eventLog, row, now, logger)));
    runs += rows.length;
    after = Number(rows[rows.length - 1]?.id);
    await sql.run('UPDATE pipeline_adoption SET imported_through = ? WHERE stream = ?', [
      after,
      stream,
    ]);
    if (runs % 50_000 < runsPerStep) logger.info({ runs, through: after }, 'adopted runs imported');
  }
  await sql.run('UPDATE pipeline_adoption SET imported_at = ? WHERE stream = ?', [
    toSqlDateTime(new Date()),
    stream,
  ]);
  logger.info({ runs, statisticsRows }, 'adopted history imported into the event log');
  return { runs, statisticsRows };
}

/** One table's rows in events of a few hundred, in a stable order (its key). */
async function importStatistics(
  sql: Sql,
  eventLog: RunEventLog,
  table: ImportedStatisticsTable,
  now: Date,
): Promise<number> {
  const columns = importedStatisticsColumns[table];
  const monthly = table.endsWith('_monthly');
  const selected = columns.map((column) => exactColumn(column)).join(', ');
  const order = monthly ? columns.slice(0, 2).join(', ') : 'id';
  let imported = 0;
  for (let part = 0; ; part++) {
    const rows = await sql.all<Record<string, string | number | null>>(
      `SELECT ${selected} FROM ${table} ORDER BY ${order} LIMIT ? OFFSET ?`,
      [statisticsRowsPerEvent, part * statisticsRowsPerEvent],
    );
    if (rows.length === 0) return imported;
    const event: StatisticsImported = {
      type: 'StatisticsImported',
      schemaVersion: 1,
      occurredAt: now.toISOString(),
      data: { table, rows: rows.map((row) => plainRow(row)) },
    };
    // Once: a part that is in the log already is refused.
    await appendAfter(
      eventLog,
      subjects.importedStatistics(eventLog.naming, table, part),
      encodeEvent(event),
      0,
      `import-${table}-${part}`,
    );
    imported += rows.length;
  }
}

/**
 * A column as text or number that writes back the same value: dates and times as text (with
 * their microseconds), FLOAT widened to DOUBLE (its text form has only six digits).
 */
function exactColumn(column: string): string {
  if (['run_date', 'month', 'update_at'].includes(column)) {
    return `CAST(${column} AS CHAR) AS ${column}`;
  }
  if (column === 'total_run_time') return `CAST(${column} AS DOUBLE) AS ${column}`;
  return column;
}

function plainRow(row: Record<string, unknown>): Record<string, string | number | null> {
  const plain: Record<string, string | number | null> = {};
  for (const [column, value] of Object.entries(row)) {
    plain[column] =
      value === null || typeof value === 'number' || typeof value === 'string'
        ? value
        : String(value);
  }
  return plain;
}

interface OriginalRun {
  id: number | string;
  dtable_uuid: string;
  owner: string | null;
  org_id: number | string | null;
  script_name: string;
  context_data: string | null;
  started_at: string | null;
  finished_at: string | null;
  success: number | boolean | null;
  return_code: number | string | null;
  output: string | null;
  operate_from: string | null;
  state: string | null;
  created_at: string | null;
}

const originalRunColumns = `id, dtable_uuid, owner, org_id, script_name, context_data,
  CAST(started_at AS CHAR) AS started_at, CAST(finished_at AS CHAR) AS finished_at, success,
  return_code, output, operate_from, state, CAST(created_at AS CHAR) AS created_at`;

/**
 * An adopted run's events on its own subject: an output that does not fit one message goes
 * first as `RunOutputChunk` events, then the `RunImported` with the last piece. Each event is
 * appended only right after the one before it (`lastSubjectSequence`), so a run is written
 * once however often this runs; an import cut short in the middle of a run (a crash, another
 * scheduler) goes on after the last piece that the log holds.
 */
async function appendImportedRun(
  eventLog: RunEventLog,
  row: OriginalRun,
  now: Date,
  logger: Logger,
): Promise<void> {
  const event = importedRun(row, now);
  const pieces = event.data.output === null ? [] : outputPieces(event.data.output);
  const chunks = pieces.slice(0, -1);
  if (chunks.length > 0) {
    event.data.output = pieces.at(-1) ?? '';
    event.data.outputChunks = chunks.length;
  }
  // Nothing of the run is in the log yet, as a rule: its last event is read only when an
  // append finds otherwise.
  let position: ResumePoint = { afterSequence: 0, nextChunk: 0 };
  for (;;) {
    if (await appendFrom(eventLog, event, chunks, position)) break;
    const found = await resumePoint(eventLog, event.runId);
    if (found === 'done') return;
    position = found;
  }
  if (chunks.length > 0) {
    logger.debug({ runId: event.runId, chunks: chunks.length }, 'adopted run output in pieces');
  }
}

interface ResumePoint {
  /** The sequence of the run's last event in the log (0: none). */
  afterSequence: number;
  /** The first output chunk that the log does not hold yet. */
  nextChunk: number;
}

/** Appends the run's chunks from `position` on, then the `RunImported`; false on a conflict. */
async function appendFrom(
  eventLog: RunEventLog,
  event: RunImported,
  chunks: readonly string[],
  position: ResumePoint,
): Promise<boolean> {
  const subject = subjects.lifecycle(eventLog.naming, event.runId);
  let after = position.afterSequence;
  for (let index = position.nextChunk; index < chunks.length; index++) {
    const chunk: RunOutputChunk = {
      type: 'RunOutputChunk',
      schemaVersion: 1,
      occurredAt: event.occurredAt,
      runId: event.runId,
      data: { index, text: chunks[index] ?? '' },
    };
    const seq = await appendAfter(eventLog, subject, encodeEvent(chunk), after);
    if (seq === null) return false;
    after = seq;
  }
  return (await appendAfter(eventLog, subject, encodeEvent(event), after)) !== null;
}

/** Where an adopted run's events stand in the log: all there, or what comes next. */
async function resumePoint(eventLog: RunEventLog, runId: number): Promise<'done' | ResumePoint> {
  const last = await eventLog.lastEventOf(runId);
  if (last === null) return { afterSequence: 0, nextChunk: 0 };
  if (last.event?.type === 'RunOutputChunk') {
    return { afterSequence: last.seq, nextChunk: last.event.data.index + 1 };
  }
  return 'done';
}

/**
 * Appends `payload` only if the subject's last event is at `afterSequence` (0: it has none).
 * The sequence it got, or null when someone else appended meanwhile (then it is in the log).
 */
async function appendAfter(
  eventLog: RunEventLog,
  subject: string,
  payload: Uint8Array,
  afterSequence: number,
  messageId?: string,
): Promise<number | null> {
  try {
    const ack = await eventLog.jetStream.publish(subject, payload, {
      ...(messageId === undefined ? {} : { msgID: messageId }),
      expect: { lastSubjectSequence: afterSequence },
      timeout: 10_000,
    });
    return ack.seq;
  } catch (error) {
    if (isWrongLastSequence(error)) return null;
    throw error;
  }
}

function importedRun(row: OriginalRun, now: Date): RunImported {
  const time = (value: string | null) => (value === null ? null : isoFromSqlText(value));
  const number = (value: number | string | null) => (value === null ? null : Number(value));
  return {
    type: 'RunImported',
    schemaVersion: 2,
    occurredAt: now.toISOString(),
    runId: Number(row.id),
    data: {
      dtableUuid: row.dtable_uuid,
      owner: row.owner,
      orgId: number(row.org_id),
      scriptName: row.script_name,
      contextData: row.context_data,
      operateFrom: row.operate_from,
      state: row.state,
      success: row.success === null ? null : Boolean(Number(row.success)),
      returnCode: number(row.return_code),
      output: row.output,
      outputChunks: 0,
      createdAt: time(row.created_at),
      startedAt: time(row.started_at),
      finishedAt: time(row.finished_at),
    },
  };
}

/** `2026-12-01 09:00:00.123456` (UTC, as the driver's session writes it) as ISO 8601. */
function isoFromSqlText(value: string): string {
  return `${value.replace(' ', 'T')}Z`;
}
