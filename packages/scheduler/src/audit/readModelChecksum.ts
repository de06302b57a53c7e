import { IsolationLevel, type MikroORM } from '@mikro-orm/mariadb';
import { type Sql, sqlOf } from '../db/sql.ts';
import { readModelProjection } from '../projection/checkpoint.ts';

/**
 * The read model: every table the projector writes, and so every table a rebuild replaces.
 * `mikro_orm_migrations` and `quota_owner` are not projected and stay where they are.
 */
export const readModelTables = [
  'script_log',
  'run_detail',
  'run_output_chunk',
  'dtable_run_script_statistics',
  'user_run_script_statistics',
  'org_run_script_statistics',
  'dtable_run_script_statistics_monthly',
  'user_run_script_statistics_monthly',
  'org_run_script_statistics_monthly',
  'pipeline_checkpoint',
  'audit_run',
] as const;

/**
 * Columns that say nothing about what was projected: the statistics tables' surrogate ids
 * (InnoDB hands out auto-increment values also to upserts that update, and never gives back
 * those of a rolled-back batch, so they depend on the projector's history, not on the log)
 * and the checkpoint's wall-clock `updated_at`.
 */
const ignoredColumns: Record<string, readonly string[]> = {
  dtable_run_script_statistics: ['id'],
  user_run_script_statistics: ['id'],
  org_run_script_statistics: ['id'],
  pipeline_checkpoint: ['updated_at'],
};

export interface TableSummary {
  table: string;
  rows: number;
  /** 128 bits over every row's content, independent of row order; identical tables match. */
  checksum: string;
}

/**
 * Row count and checksum of every read-model table in `schema`. Each row is hashed
 * (MD5 of its quoted columns) and the hashes are XOR-ed, so the sum needs no sort and no
 * memory however large the table; row counts guard the one blind spot of XOR (pairs).
 */
export async function summarizeReadModel(sql: Sql, schema: string): Promise<TableSummary[]> {
  const summaries: TableSummary[] = [];
  for (const table of readModelTables) {
    const columns = await columnsOf(sql, schema, table);
    const row = `MD5(CONCAT_WS(',', ${columns.map((column) => `QUOTE(\`${column}\`)`).join(', ')}))`;
    const [result] = await sql.all<{ row_count: number | string; high: string; low: string }>(
      `SELECT COUNT(*) AS row_count,
         LPAD(HEX(BIT_XOR(CAST(CONV(SUBSTRING(${row}, 1, 16), 16, 10) AS UNSIGNED))), 16, '0') AS high,
         LPAD(HEX(BIT_XOR(CAST(CONV(SUBSTRING(${row}, 17, 16), 16, 10) AS UNSIGNED))), 16, '0') AS low
       FROM \`${schema}\`.\`${table}\``,
    );
    summaries.push({
      table,
      rows: Number(result?.row_count ?? 0),
      checksum: `${result?.high ?? ''}${result?.low ?? ''}`.toLowerCase(),
    });
  }
  return summaries;
}

/** The read model of one schema as one consistent snapshot saw it. */
export interface ReadModelSnapshot {
  /** The last stream sequence its tables hold (0: none). */
  position: number;
  tables: TableSummary[];
}

/**
 * The position and the summaries of `schema`'s read model, all read in one repeatable-read
 * transaction: a projector committing meanwhile can neither move the checkpoint past the rows
 * summed nor change one table after another was summed.
 */
export async function snapshotOfReadModel(
  orm: MikroORM,
  schema: string,
): Promise<ReadModelSnapshot> {
  return await orm.em.getConnection().transactional(
    async (transaction) => {
      const sql = sqlOf(orm, transaction);
      const [row] = await sql.all<{ stream_sequence: number | string }>(
        `SELECT stream_sequence FROM \`${schema}\`.pipeline_checkpoint WHERE projection = ?`,
        [readModelProjection],
      );
      const position = row ? Number(row.stream_sequence) : 0;
      return { position, tables: await summarizeReadModel(sql, schema) };
    },
    { isolationLevel: IsolationLevel.REPEATABLE_READ, readOnly: true },
  );
}

async function columnsOf(sql: Sql, schema: string, table: string): Promise<string[]> {
  const rows = await sql.all<{ name: string }>(
    `SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS
     WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    [schema, table],
  );
  const ignored = ignoredColumns[table] ?? [];
  const columns = rows.map((row) => row.name).filter((name) => !ignored.includes(name));
  if (columns.length === 0) throw new Error(`table ${schema}.${table} does not exist`);
  return columns;
}

/** The tables whose count or checksum differ between two summaries. */
export function differingTables(before: TableSummary[], after: TableSummary[]): string[] {
  return before
    .filter((summary) => {
      const other = after.find((candidate) => candidate.table === summary.table);
      return !other || other.rows !== summary.rows || other.checksum !== summary.checksum;
    })
    .map((summary) => summary.table);
}
