import type { SqlDialect } from '../db/dialect.ts';
import type { Sql } from '../db/sql.ts';

/**
 * The statistics rows of one projection batch, written together at its end: one multi-row
 * upsert per table instead of six statements per finished run. Rows keep their order and
 * are not summed beforehand, so MariaDB adds them one by one exactly as separate statements
 * would (the float columns round the same way, the last `update_at` wins), and a rebuild with
 * other batch boundaries gives the same tables.
 */
export class StatisticsBatch {
  private readonly rows = new Map<string, unknown[][]>();

  add(table: StatisticsTable, values: unknown[]): void {
    const rows = this.rows.get(table);
    if (rows) rows.push(values);
    else this.rows.set(table, [values]);
  }

  async flush(sql: Sql): Promise<void> {
    for (const [table, rows] of this.rows) {
      const statement = statements[table as StatisticsTable];
      for (let first = 0; first < rows.length; first += maxRowsPerStatement) {
        const group = rows.slice(first, first + maxRowsPerStatement);
        await sql.run(
          `${statement.insert} VALUES ${group.map(() => statement.placeholders).join(', ')} ${statement.onDuplicate(sql.dialect)}`,
          group.flat(),
        );
      }
    }
    this.rows.clear();
  }
}

const maxRowsPerStatement = 500;

/** Adds the incoming counts to the row of the same owner and day (or month). */
const addTotals = (incoming: (column: string) => string) =>
  `total_run_count = total_run_count + ${incoming('total_run_count')},
    total_run_time = total_run_time + ${incoming('total_run_time')}`;
/** The same on a daily row, whose `update_at` (and, per user, `org_id`) the last run sets. */
const addDaily =
  (owner: string, also: readonly string[] = []) =>
  (dialect: SqlDialect) =>
    dialect.onConflictUpdate([owner, 'run_date'], (incoming) =>
      [
        addTotals(incoming),
        ...['update_at', ...also].map((column) => `${column} = ${incoming(column)}`),
      ].join(', '),
    );
const addMonthly = (owner: string) => (dialect: SqlDialect) =>
  dialect.onConflictUpdate(['month', owner], addTotals);

/** The statistics tables and how a row is added to each. */
export const statements = {
  dtableDaily: {
    insert:
      'INSERT INTO dtable_run_script_statistics (dtable_uuid, run_date, total_run_count, total_run_time, update_at)',
    placeholders: '(?, ?, ?, ?, ?)',
    onDuplicate: addDaily('dtable_uuid'),
  },
  orgDaily: {
    insert:
      'INSERT INTO org_run_script_statistics (org_id, run_date, total_run_count, total_run_time, update_at)',
    placeholders: '(?, ?, ?, ?, ?)',
    onDuplicate: addDaily('org_id'),
  },
  userDaily: {
    insert:
      'INSERT INTO user_run_script_statistics (username, org_id, run_date, total_run_count, total_run_time, update_at)',
    placeholders: '(?, ?, ?, ?, ?, ?)',
    onDuplicate: addDaily('username', ['org_id']),
  },
  dtableMonthly: {
    insert:
      'INSERT INTO dtable_run_script_statistics_monthly (month, dtable_uuid, total_run_count, total_run_time)',
    placeholders: '(?, ?, ?, ?)',
    onDuplicate: addMonthly('dtable_uuid'),
  },
  orgMonthly: {
    insert:
      'INSERT INTO org_run_script_statistics_monthly (month, org_id, total_run_count, total_run_time)',
    placeholders: '(?, ?, ?, ?)',
    onDuplicate: addMonthly('org_id'),
  },
  userMonthly: {
    insert:
      'INSERT INTO user_run_script_statistics_monthly (month, username, total_run_count, total_run_time)',
    placeholders: '(?, ?, ?, ?)',
    onDuplicate: addMonthly('username'),
  },
} as const;

export type StatisticsTable = keyof typeof statements;
