import type { Sql } from '../../db/sql.ts';

/**
 * What one finished run added to the daily statistics rows, to be added to the monthly
 * totals too. Each owner is given exactly when the daily row of that owner was written:
 * `orgId` only for a real org (not -1), `username` only for a user (not a group).
 */
export interface CountedRun {
  /** The local day (`YYYY-MM-DD`, in `TIME_ZONE`) the daily rows were counted on. */
  runDate: string;
  runCount: number;
  /** Seconds. */
  runTime: number;
  dtableUuid?: string;
  orgId?: number;
  username?: string;
}

const upsert = (table: string, column: string) =>
  `INSERT INTO ${table} (month, ${column}, total_run_count, total_run_time) VALUES (?, ?, ?, ?)
   ON DUPLICATE KEY UPDATE total_run_count = total_run_count + VALUES(total_run_count),
     total_run_time = total_run_time + VALUES(total_run_time)`;

/**
 * Keeps the `*_run_script_statistics_monthly` tables equal to the monthly sums of the daily
 * tables. The projector calls it in the transaction that adds a run to the daily rows,
 * with the same owners; retention calls it with negative amounts for the rows it deletes.
 */
export async function addToMonthlyTotals(sql: Sql, counted: CountedRun): Promise<void> {
  const month = `${counted.runDate.slice(0, 7)}-01`;
  const amounts = [counted.runCount, counted.runTime];
  if (counted.dtableUuid !== undefined) {
    await sql.run(upsert('dtable_run_script_statistics_monthly', 'dtable_uuid'), [
      month,
      counted.dtableUuid,
      ...amounts,
    ]);
  }
  if (counted.orgId !== undefined) {
    await sql.run(upsert('org_run_script_statistics_monthly', 'org_id'), [
      month,
      counted.orgId,
      ...amounts,
    ]);
  }
  if (counted.username !== undefined) {
    await sql.run(upsert('user_run_script_statistics_monthly', 'username'), [
      month,
      counted.username,
      ...amounts,
    ]);
  }
}
