import type { Sql } from '../../db/sql.ts';
import { StatisticsBatch } from '../../projection/statisticsBatch.ts';

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

/**
 * Keeps the `*_run_script_statistics_monthly` tables equal to the monthly sums of the daily
 * tables. The projector adds its runs through the same statements (`StatisticsBatch`);
 * retention calls this with negative amounts for the daily rows it deletes.
 */
export async function addToMonthlyTotals(sql: Sql, counted: CountedRun): Promise<void> {
  const month = `${counted.runDate.slice(0, 7)}-01`;
  const amounts = [counted.runCount, counted.runTime];
  const rows = new StatisticsBatch();
  if (counted.dtableUuid !== undefined)
    rows.add('dtableMonthly', [month, counted.dtableUuid, ...amounts]);
  if (counted.orgId !== undefined) rows.add('orgMonthly', [month, counted.orgId, ...amounts]);
  if (counted.username !== undefined)
    rows.add('userMonthly', [month, counted.username, ...amounts]);
  await rows.flush(sql);
}
