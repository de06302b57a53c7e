import type { ImportedStatisticsTable } from '@pipeline/events';
import type { Sql } from '../db/sql.ts';

/** A `script_log` row; for a stored row, a null in a changing column means "unchanged". */
export interface ScriptLogRow {
  id: number;
  dtable_uuid: string;
  owner: string | null;
  org_id: number | null;
  script_name: string;
  context_data: string | null;
  started_at: string | null;
  finished_at: string | null;
  success: boolean | null;
  return_code: number | null;
  output: string | null;
  operate_from: string | null;
  state: string | null;
  created_at: string | null;
}

export interface RunDetailRow {
  run_id: number;
  operator: string | null;
  starter_id: string | null;
  claimed_at: string | null;
  duration_ms: number | null;
  timed_out: boolean;
  out_of_memory: boolean;
  cancelled: boolean;
  lost: boolean;
  output_truncated: boolean;
  rejected_reason: string | null;
}

export interface OutputChunkRow {
  run_id: number;
  chunk_index: number;
  text: string;
}

const scriptLogColumns = [
  'id',
  'dtable_uuid',
  'owner',
  'org_id',
  'script_name',
  'context_data',
  'started_at',
  'finished_at',
  'success',
  'return_code',
  'output',
  'operate_from',
  'state',
  'created_at',
] as const satisfies readonly (keyof ScriptLogRow)[];

/** The columns the projection moves forward; the others are written once, with the request. */
const changingColumns = [
  'state',
  'started_at',
  'finished_at',
  'success',
  'return_code',
  'output',
] as const;

/**
 * New rows in full, stored ones with their changed columns: a stored row carries null in the
 * columns the batch leaves alone, and `COALESCE` keeps the stored value there.
 */
export async function upsertScriptLogRows(sql: Sql, rows: readonly ScriptLogRow[]): Promise<void> {
  await upsertRows(sql, {
    table: 'script_log',
    columns: scriptLogColumns,
    key: ['id'],
    rows: rows.map((row) => scriptLogColumns.map((column) => row[column])),
    updates: (incoming) =>
      changingColumns.map((column) => `${column} = COALESCE(${incoming(column)}, ${column})`),
  });
}

const detailColumns = [
  'run_id',
  'operator',
  'starter_id',
  'claimed_at',
  'duration_ms',
  'timed_out',
  'out_of_memory',
  'cancelled',
  'lost',
  'output_truncated',
  'rejected_reason',
] as const satisfies readonly (keyof RunDetailRow)[];

/** The first operator, starter and claim time a run gets stay. */
const firstValueWins = ['operator', 'starter_id', 'claimed_at'];
/** What the end of a run (at most one is applied) writes over. */
const overwrittenWhenEnded = {
  finished: ['duration_ms', 'timed_out', 'out_of_memory', 'cancelled', 'lost', 'output_truncated'],
  rejected: ['rejected_reason'],
} as const;

/** Rows of `run_detail`: what a run's claim, start and end said about it. */
export async function upsertRunDetails(
  sql: Sql,
  details: readonly { row: RunDetailRow; ended: 'finished' | 'rejected' | null }[],
): Promise<void> {
  for (const ended of [null, 'finished', 'rejected'] as const) {
    const group = details.filter((detail) => detail.ended === ended);
    await upsertRows(sql, {
      table: 'run_detail',
      columns: detailColumns,
      key: ['run_id'],
      rows: group.map(({ row }) => detailColumns.map((column) => row[column])),
      updates: (incoming) => [
        ...firstValueWins.map((column) => `${column} = COALESCE(${column}, ${incoming(column)})`),
        ...(ended === null ? [] : overwrittenWhenEnded[ended]).map(
          (column) => `${column} = ${incoming(column)}`,
        ),
      ],
    });
  }
}

export async function upsertOutputChunks(
  sql: Sql,
  chunks: readonly OutputChunkRow[],
): Promise<void> {
  await upsertRows(sql, {
    table: 'run_output_chunk',
    columns: ['run_id', 'chunk_index', 'text'],
    key: ['run_id', 'chunk_index'],
    rows: chunks.map((chunk) => [chunk.run_id, chunk.chunk_index, chunk.text]),
    updates: (incoming) => [`text = ${incoming('text')}`],
  });
}

/** A finished run needs its output pieces no more. */
export async function deleteOutputChunks(sql: Sql, runIds: readonly number[]): Promise<void> {
  for (let first = 0; first < runIds.length; first += maxRowsPerStatement) {
    const group = runIds.slice(first, first + maxRowsPerStatement);
    await sql.run(
      `DELETE FROM run_output_chunk WHERE run_id IN (${group.map(() => '?').join(', ')})`,
      group,
    );
  }
}

const maxRowsPerStatement = 500;
/** Well below MariaDB's default `max_allowed_packet` (16 MB), outputs included. */
const maxBytesPerStatement = 4 * 1024 * 1024;

/**
 * A multi-row INSERT that updates the rows whose `key` is stored already (the dialect's
 * upsert), in statements of at most a few hundred rows and a few megabytes (long outputs),
 * in the rows' order. `updates` writes the assignments; `incoming(column)` is the value the
 * INSERT brought, a bare column the stored one. Without `updates`, stored rows stay as they are.
 */
export async function upsertRows(
  sql: Sql,
  statement: {
    table: string;
    columns: readonly string[];
    key: readonly string[];
    rows: readonly (readonly unknown[])[];
    updates?: (incoming: (column: string) => string) => readonly string[];
  },
): Promise<void> {
  const placeholders = `(${statement.columns.map(() => '?').join(', ')})`;
  const head = `INSERT INTO ${statement.table} (${statement.columns.join(', ')}) VALUES`;
  const updates = statement.updates;
  const tail = updates
    ? sql.dialect.onConflictUpdate(statement.key, (incoming) => updates(incoming).join(', '))
    : sql.dialect.onConflictIgnore(statement.key);
  let group: (readonly unknown[])[] = [];
  let bytes = 0;
  const flush = async () => {
    if (group.length === 0) return;
    await sql.run(`${head} ${group.map(() => placeholders).join(', ')} ${tail}`, group.flat());
    group = [];
    bytes = 0;
  };
  for (const row of statement.rows) {
    const rowBytes = row.reduce<number>(
      (sum, value) => sum + (typeof value === 'string' ? value.length * 3 : 8),
      0,
    );
    if (group.length >= maxRowsPerStatement || bytes + rowBytes > maxBytesPerStatement) {
      await flush();
    }
    group.push(row);
    bytes += rowBytes;
  }
  await flush();
}

/**
 * The columns of each statistics table an import carries, its unique key (two columns)
 * first. The daily
 * tables' surrogate `id` is not among them: it says nothing about the counts.
 */
export const importedStatisticsColumns: Record<ImportedStatisticsTable, readonly string[]> = {
  dtable_run_script_statistics: [
    'dtable_uuid',
    'run_date',
    'total_run_count',
    'total_run_time',
    'update_at',
  ],
  user_run_script_statistics: [
    'username',
    'run_date',
    'org_id',
    'total_run_count',
    'total_run_time',
    'update_at',
  ],
  org_run_script_statistics: [
    'org_id',
    'run_date',
    'total_run_count',
    'total_run_time',
    'update_at',
  ],
  dtable_run_script_statistics_monthly: [
    'month',
    'dtable_uuid',
    'total_run_count',
    'total_run_time',
  ],
  user_run_script_statistics_monthly: ['month', 'username', 'total_run_count', 'total_run_time'],
  org_run_script_statistics_monthly: ['month', 'org_id', 'total_run_count', 'total_run_time'],
};

/**
 * An adopted original's statistics rows, each written unless its key is there already: on
 * the database the import came from they are (it leaves them as they are), in a rebuild
 * they are not yet, since the import precedes every run the pipeline counted.
 */
export async function insertImportedStatistics(
  sql: Sql,
  table: ImportedStatisticsTable,
  rows: readonly Record<string, string | number | null>[],
): Promise<void> {
  const columns = importedStatisticsColumns[table];
  await upsertRows(sql, {
    table,
    columns,
    key: columns.slice(0, 2),
    rows: rows.map((row) => columns.map((column) => row[column] ?? null)),
  });
}

export interface AuditRunRow {
  run_id: number;
  dtable_uuid: string;
  owner: string | null;
  org_id: number | null;
}

/** Who each run belongs to, once (see Migration0007AuditRunIndex). */
export async function insertAuditRuns(sql: Sql, runs: readonly AuditRunRow[]): Promise<void> {
  await upsertRows(sql, {
    table: 'audit_run',
    columns: ['run_id', 'dtable_uuid', 'owner', 'org_id'],
    key: ['run_id'],
    rows: runs.map((run) => [run.run_id, run.dtable_uuid, run.owner, run.org_id]),
  });
}
