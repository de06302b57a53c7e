import type {
  LogEvent,
  RunFinished,
  RunImported,
  RunRejected,
  RunRequested,
  StatisticsImported,
} from '@pipeline/events';
import type { Logger } from 'pino';
import { type Sql, toSqlDateTime } from '../db/sql.ts';
import { localDate } from '../http/runView.ts';
import { isGroupOwner } from '../submission/parseSubmission.ts';
import {
  type AuditRunRow,
  deleteOutputChunks,
  insertAuditRuns,
  insertImportedStatistics,
  type OutputChunkRow,
  type RunDetailRow,
  type ScriptLogRow,
  upsertOutputChunks,
  upsertRunDetails,
  upsertScriptLogRows,
} from './readModelRows.ts';
import { StatisticsBatch } from './statisticsBatch.ts';

export interface ProjectionContext {
  /** `TIME_ZONE`: statistics count a run on the day it finished there. */
  timeZone: string;
  logger: Logger;
}

/** One event of the log and its stream sequence (a request's sequence is its run id). */
export interface SequencedEvent {
  seq: number;
  event: LogEvent;
}

/** A run's `script_log` row as the batch sees it: what was stored, and what it changes. */
interface RunState {
  row: ScriptLogRow;
  /** The row was in the table before the batch: only its changing columns are written. */
  stored: boolean;
  changed: boolean;
}

/** A run's `run_detail` row: the values this batch brings, merged as the table merges them. */
interface DetailState {
  row: RunDetailRow;
  /** Which columns this batch overwrites; the others keep the first value they got. */
  ended: 'finished' | 'rejected' | null;
}

/**
 * Applies a batch of events to the read model in a few statements instead of a few per
 * event. The rows the batch touches are read first (one SELECT per table), every event is
 * applied to them in memory by the same rules as one statement per event would (an event
 * never moves a run backwards, a second end changes nothing, the first starter id wins),
 * and the result is written with one multi-row upsert per table. Runs are independent of
 * each other, and the statistics rows keep the order of the runs' ends, so the tables are
 * the same whatever the batch boundaries: a rebuild gives what the live projection gave.
 */
export class ProjectionBatch {
  private readonly context: ProjectionContext;
  private readonly runs = new Map<number, RunState>();
  private readonly details = new Map<number, DetailState>();
  /** Output pieces of runs still open, by run and index (stored ones and this batch's). */
  private readonly chunks = new Map<number, Map<number, string>>();
  private readonly chunksWritten = new Map<number, Map<number, string>>();
  private readonly endedRuns = new Set<number>();
  private readonly importedStatistics: StatisticsImported[] = [];
  private readonly auditRuns: AuditRunRow[] = [];
  /** The runs' ends this batch applied; a second end of a run, ignored, is not among them. */
  readonly appliedEnds: (RunFinished | RunRejected)[] = [];
  readonly statistics = new StatisticsBatch();

  private constructor(context: ProjectionContext) {
    this.context = context;
  }

  /** Reads what the events of `batch` need from the read model. */
  static async load(
    sql: Sql,
    batch: readonly SequencedEvent[],
    context: ProjectionContext,
  ): Promise<ProjectionBatch> {
    const projection = new ProjectionBatch(context);
    const runIds = [...new Set(batch.flatMap(({ seq, event }) => runIdOf(seq, event) ?? []))];
    for (const row of await selectIn<ScriptLogRow>(
      sql,
      'SELECT id, dtable_uuid, owner, org_id, script_name, state FROM script_log WHERE id IN',
      runIds,
    )) {
      projection.runs.set(Number(row.id), { row: storedRow(row), stored: true, changed: false });
    }
    const withChunks = batch.flatMap(({ event }) =>
      (event.type === 'RunFinished' || event.type === 'RunImported') && event.data.outputChunks > 0
        ? [event.runId]
        : [],
    );
    for (const chunk of await selectIn<OutputChunkRow>(
      sql,
      'SELECT run_id, chunk_index, text FROM run_output_chunk WHERE run_id IN',
      [...new Set(withChunks)],
    )) {
      projection.chunksOf(Number(chunk.run_id)).set(Number(chunk.chunk_index), chunk.text);
    }
    return projection;
  }

  apply({ seq, event }: SequencedEvent): void {
    switch (event.type) {
      case 'RunRequested':
        this.applyRequested(seq, event);
        return;
      case 'RunImported':
        this.applyImported(event);
        return;
      case 'RunClaimed':
        this.detailOf(event.runId, (row) => {
          row.starter_id ??= event.data.starterId;
          row.claimed_at ??= toSqlDateTime(event.occurredAt);
        });
        return;
      case 'RunStarted': {
        const run = this.runs.get(event.runId);
        if (run && (run.row.state === null || run.row.state === 'pending')) {
          this.change(run, { state: 'running', started_at: toSqlDateTime(event.occurredAt) });
        }
        this.detailOf(event.runId, (row) => {
          row.starter_id ??= event.data.starterId;
        });
        return;
      }
      case 'RunOutputChunk': {
        // Kept only while the run is open: a chunk replayed after its run finished is not needed.
        // An adopted run's chunks come before its RunImported, while it has no row yet.
        const run = this.runs.get(event.runId);
        if (run?.row.state === 'finished') return;
        this.chunksOf(event.runId).set(event.data.index, event.data.text);
        this.writtenChunksOf(event.runId).set(event.data.index, event.data.text);
        return;
      }
      case 'RunFinished':
        this.applyFinished(event);
        return;
      case 'RunRejected':
        this.applyRejected(event);
        return;
      case 'StatisticsImported':
        this.importedStatistics.push(event);
        return;
      case 'RunCancelRequested':
        // A request, not an end: the run stays as it is until its RunFinished {cancelled: true},
        // which the cancel route (unclaimed run), the claim (claimed, not yet asked) or the
        // starter (claimed or running) appends. No row changes; the log keeps it for the audit.
        this.context.logger.info({ runId: event.runId }, 'run cancel requested');
        return;
    }
  }

  /** Writes what the batch changed; the caller's transaction also moves the checkpoint. */
  async write(sql: Sql): Promise<void> {
    const changedRuns = [...this.runs.values()].filter((run) => run.changed);
    await upsertScriptLogRows(
      sql,
      changedRuns.map((run) => run.row),
    );
    await insertAuditRuns(sql, this.auditRuns);
    await upsertRunDetails(sql, [...this.details.values()]);
    await deleteOutputChunks(sql, [...this.endedRuns]);
    const openChunks = [...this.chunksWritten].flatMap(([runId, pieces]) =>
      this.endedRuns.has(runId)
        ? []
        : [...pieces].map(([index, text]) => ({ run_id: runId, chunk_index: index, text })),
    );
    await upsertOutputChunks(sql, openChunks);
    // Before the runs' counts: the import precedes every run of the pipeline in the log.
    for (const imported of this.importedStatistics) {
      await insertImportedStatistics(sql, imported.data.table, imported.data.rows);
    }
    await this.statistics.flush(sql);
  }

  private applyRequested(runId: number, event: RunRequested): void {
    const request = event.data;
    this.auditRuns.push({
      run_id: runId,
      dtable_uuid: request.dtableUuid,
      owner: request.owner,
      org_id: request.orgId,
    });
    if (!this.runs.has(runId)) {
      this.runs.set(runId, {
        stored: false,
        changed: true,
        row: {
          ...emptyRow(runId),
          dtable_uuid: request.dtableUuid,
          owner: request.owner,
          org_id: request.orgId,
          script_name: request.scriptName,
          context_data: request.contextData === null ? null : JSON.stringify(request.contextData),
          operate_from: request.operateFrom,
          state: 'pending',
          created_at: toSqlDateTime(event.occurredAt),
        },
      });
    }
    const operator = event.data.operator;
    if (operator !== null) {
      this.detailOf(runId, (row) => {
        row.operator ??= operator;
      });
    }
  }

  /**
   * The adopted original's row, as it was. A row that is still there (the import itself, on
   * the database it came from) is left as it is; a rebuild writes it back.
   */
  private applyImported(event: RunImported): void {
    const imported = event.data;
    this.auditRuns.push({
      run_id: event.runId,
      dtable_uuid: imported.dtableUuid,
      owner: imported.owner,
      org_id: imported.orgId,
    });
    const known = this.runs.has(event.runId);
    const output = known ? null : this.assembleOutput(event);
    if (event.data.outputChunks > 0) this.endRun(event.runId);
    if (known) return;
    const time = (value: string | null) => (value === null ? null : importedDateTime(value));
    this.runs.set(event.runId, {
      stored: false,
      changed: true,
      row: {
        id: event.runId,
        dtable_uuid: imported.dtableUuid,
        owner: imported.owner,
        org_id: imported.orgId,
        script_name: imported.scriptName,
        context_data: imported.contextData,
        started_at: time(imported.startedAt),
        finished_at: time(imported.finishedAt),
        success: imported.success,
        return_code: imported.returnCode,
        output: imported.output === null ? null : output,
        operate_from: imported.operateFrom,
        state: imported.state,
        created_at: time(imported.createdAt),
      },
    });
  }

  private applyFinished(event: RunFinished): void {
    const run = this.openRunFor(event);
    if (!run) return;
    this.appliedEnds.push(event);
    const finished = event.data;
    this.change(run, {
      state: 'finished',
      success: finished.success,
      return_code: finished.returnCode,
      output: this.assembleOutput(event),
      finished_at: toSqlDateTime(finished.finishedAt),
      ...(finished.startedAt === null ? {} : { started_at: toSqlDateTime(finished.startedAt) }),
    });
    this.endRun(event.runId);
    const detail = this.detailOf(event.runId, (row) => {
      row.starter_id ??= finished.starterId;
      row.duration_ms = finished.durationMs;
      row.timed_out = finished.timedOut;
      row.out_of_memory = finished.outOfMemory;
      row.cancelled = finished.cancelled;
      row.lost = finished.lost;
      row.output_truncated = finished.outputTruncated;
    });
    detail.ended = 'finished';
    // Only a run that really ran counts: not a dispatch failure, not a lost run.
    if (finished.startedAt !== null && !finished.lost) {
      this.countRun(run.row, finished.startedAt, finished.finishedAt);
    }
  }

  private applyRejected(event: RunRejected): void {
    const run = this.openRunFor(event);
    if (!run) return;
    this.appliedEnds.push(event);
    this.change(run, {
      state: 'finished',
      success: false,
      return_code: -1,
      output: event.data.output,
      finished_at: toSqlDateTime(event.occurredAt),
    });
    this.endRun(event.runId);
    const detail = this.detailOf(event.runId, (row) => {
      row.rejected_reason = event.data.reason;
    });
    detail.ended = 'rejected';
  }

  /** The run's state when it exists and is not finished yet; null otherwise (logged). */
  private openRunFor(event: RunFinished | RunRejected): RunState | null {
    const run = this.runs.get(event.runId);
    const where = { runId: event.runId, type: event.type };
    if (!run) {
      this.context.logger.warn(where, 'end of an unknown run ignored');
      // Its output chunks, if the log still had any (its request aged out): none kept.
      this.endRun(event.runId);
      return null;
    }
    if (run.row.state === 'finished') {
      this.context.logger.warn(where, 'run already finished, event ignored');
      return null;
    }
    return run;
  }

  private assembleOutput(event: RunFinished | RunImported): string {
    if (event.data.outputChunks === 0) return event.data.output ?? '';
    const pieces = [...(this.chunks.get(event.runId) ?? new Map<number, string>())].sort(
      ([left], [right]) => left - right,
    );
    if (pieces.length !== event.data.outputChunks) {
      this.context.logger.warn(
        { runId: event.runId, expected: event.data.outputChunks, found: pieces.length },
        'output chunks missing',
      );
    }
    return pieces.map(([, text]) => text).join('') + (event.data.output ?? '');
  }

  /**
   * +1 run and +run time on the day the run finished, per base, per org (unless -1) and per
   * user (unless a group), as the original's statistics tables hold them.
   */
  private countRun(run: ScriptLogRow, startedAt: string, finishedAt: string): void {
    const finishedInstant = new Date(finishedAt);
    const seconds = Math.max(0, (finishedInstant.getTime() - new Date(startedAt).getTime()) / 1000);
    const runDate = localDate(finishedInstant, this.context.timeZone);
    const month = `${runDate.slice(0, 7)}-01`;
    const updateAt = toSqlDateTime(finishedInstant);
    const statistics = this.statistics;

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
  }

  private change(run: RunState, values: Partial<ScriptLogRow>): void {
    Object.assign(run.row, values);
    run.changed = true;
  }

  private endRun(runId: number): void {
    this.endedRuns.add(runId);
    this.chunks.delete(runId);
  }

  private detailOf(runId: number, update: (row: RunDetailRow) => void): DetailState {
    let detail = this.details.get(runId);
    if (!detail) {
      detail = { row: emptyDetail(runId), ended: null };
      this.details.set(runId, detail);
    }
    update(detail.row);
    return detail;
  }

  private chunksOf(runId: number): Map<number, string> {
    return mapIn(this.chunks, runId);
  }

  private writtenChunksOf(runId: number): Map<number, string> {
    return mapIn(this.chunksWritten, runId);
  }
}

/**
 * An imported time as the column had it: the import writes UTC with all six decimals, which a
 * detour through `Date` (milliseconds) would cut.
 */
function importedDateTime(value: string): string {
  const utc = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)Z$/.exec(value);
  return utc ? `${utc[1]} ${utc[2]}` : toSqlDateTime(value);
}

function runIdOf(seq: number, event: LogEvent): number | null {
  if (event.type === 'StatisticsImported') return null;
  return event.type === 'RunRequested' ? seq : event.runId;
}

function mapIn(maps: Map<number, Map<number, string>>, runId: number): Map<number, string> {
  let pieces = maps.get(runId);
  if (!pieces) {
    pieces = new Map();
    maps.set(runId, pieces);
  }
  return pieces;
}

/** A stored row as read: the identity and state; the columns not read stay as they are. */
function storedRow(row: ScriptLogRow): ScriptLogRow {
  return {
    ...emptyRow(Number(row.id)),
    dtable_uuid: row.dtable_uuid,
    owner: row.owner,
    org_id: row.org_id === null ? null : Number(row.org_id),
    script_name: row.script_name,
    state: row.state,
  };
}

function emptyRow(id: number): ScriptLogRow {
  return {
    id,
    dtable_uuid: '',
    owner: null,
    org_id: null,
    script_name: '',
    context_data: null,
    started_at: null,
    finished_at: null,
    success: null,
    return_code: null,
    output: null,
    operate_from: null,
    state: null,
    created_at: null,
  };
}

function emptyDetail(runId: number): RunDetailRow {
  return {
    run_id: runId,
    operator: null,
    starter_id: null,
    claimed_at: null,
    duration_ms: null,
    timed_out: false,
    out_of_memory: false,
    cancelled: false,
    lost: false,
    output_truncated: false,
    rejected_reason: null,
  };
}

async function selectIn<Row>(sql: Sql, query: string, ids: readonly number[]): Promise<Row[]> {
  const rows: Row[] = [];
  for (let first = 0; first < ids.length; first += 1000) {
    const group = ids.slice(first, first + 1000);
    rows.push(...(await sql.all<Row>(`${query} (${group.map(() => '?').join(', ')})`, group)));
  }
  return rows;
}
