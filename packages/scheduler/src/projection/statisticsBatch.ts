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
          `${statement.insert} VALUES ${group.map(() => statement.placeholders).join(', ')} ${statement.onDuplicate}`,
          group.flat(),
        );
      }
    }
    this.rows.clear();
  }
}

const maxRowsPerStatement = 500;

const addDaily = `ON DUPLICATE KEY UPDATE total_run_count = total_run_count + VALUES(total_run_count),
    total_run_time = total_run_time + VALUES(total_run_time), update_at = VALUES(update_at)`;
const addMonthly = `ON DUPLICATE KEY UPDATE total_run_count = total_run_count + VALUES(total_run_count),
    total_run_time = total_run_time + VALUES(total_run_time)`;

/** The statistics tables and how a row is added to each. */
export const statements = {
  dtableDaily: {
    insert:
      'INSERT INTO dtable_run_script_statistics (dtable_uuid, run_date, total_run_count, total_run_time, update_at)',
    placeholders: '(?, ?, ?, ?, ?)',
    onDuplicate: addDaily,
  },
  orgDaily: {
    insert:
      'INSERT INTO org_run_script_statistics (org_id, run_date, total_run_count, total_run_time, update_at)',
    placeholders: '(?, ?, ?, ?, ?)',
    onDuplicate: addDaily,
  },
  userDaily: {
    insert:
      'INSERT INTO user_run_script_statistics (username, org_id, run_date, total_run_count, total_run_time, update_at)',
    placeholders: '(?, ?, ?, ?, ?, ?)',
    onDuplicate: `${addDaily}, org_id = VALUES(org_id)`,
  },
  dtableMonthly: {
    insert:
      'INSERT INTO dtable_run_script_statistics_monthly (month, dtable_uuid, total_run_count, total_run_time)',
    placeholders: '(?, ?, ?, ?)',
    onDuplicate: addMonthly,
  },
  orgMonthly: {
    insert:
      'INSERT INTO org_run_script_statistics_monthly (month, org_id, total_run_count, total_run_time)',
    placeholders: '(?, ?, ?, ?)',
    onDuplicate: addMonthly,
  },
  userMonthly: {
    insert:
      'INSERT INTO user_run_script_statistics_monthly (month, username, total_run_count, total_run_time)',
    placeholders: '(?, ?, ?, ?)',
    onDuplicate: addMonthly,
  },
} as const;

export type StatisticsTable = keyof typeof statements;
