import type { FastifyInstance } from 'fastify';
import { positiveInteger, queryValue } from '../read/queryValues.ts';
import type { ReadContext } from '../read/readModel.ts';
import { jsonBadRequest } from '../read/replies.ts';
import { addDays } from '../read/zonedTime.ts';
import { localDate } from '../runView.ts';

/** Longest span the charts cover: the statistics' default retention. */
const maxDays = 90;
/** Orgs and bases shown, those with the most runs. */
const topCount = 10;

interface TotalsRow {
  runs: unknown;
  run_time: unknown;
}

/**
 * `GET /admin/dashboard/statistics/?days=14`: the dashboard's charts. Runs and run time per
 * day, and for the orgs and the bases with the most runs, over the last `days` days in
 * `TIME_ZONE` (today included). Read from the daily statistics tables, so it counts what
 * SeaTable's statistics count: runs that really ran (docs/internals.md).
 */
export function dashboardStatisticsRoute(
  app: FastifyInstance,
  context: Pick<ReadContext, 'selectRows' | 'timeZone' | 'now'>,
): void {
  app.get('/admin/dashboard/statistics/', async (request, reply) => {
    const days = positiveInteger(queryValue(request.query, 'days'), 'days', 14, maxDays);
    if (!days.ok) return jsonBadRequest(reply, days.reason);
    const to = localDate(context.now(), context.timeZone);
    const from = addDays(to, 1 - days.value);
    const range = [from, to];

    const [byDay, byOrg, byBase] = await Promise.all([
      context.selectRows<TotalsRow & { run_date: unknown }>(
        `SELECT run_date, SUM(total_run_count) AS runs, SUM(total_run_time) AS run_time
         FROM dtable_run_script_statistics WHERE run_date >= ? AND run_date <= ?
         GROUP BY run_date`,
        range,
      ),
      context.selectRows<TotalsRow & { org_id: unknown }>(
        `SELECT org_id, SUM(total_run_count) AS runs, SUM(total_run_time) AS run_time
         FROM org_run_script_statistics WHERE run_date >= ? AND run_date <= ? AND org_id <> -1
         GROUP BY org_id ORDER BY runs DESC, org_id LIMIT ?`,
        [...range, topCount],
      ),
      context.selectRows<TotalsRow & { dtable_uuid: unknown }>(
        `SELECT dtable_uuid, SUM(total_run_count) AS runs, SUM(total_run_time) AS run_time
         FROM dtable_run_script_statistics WHERE run_date >= ? AND run_date <= ?
         GROUP BY dtable_uuid ORDER BY runs DESC, dtable_uuid LIMIT ?`,
        [...range, topCount],
      ),
    ]);

    const perDay = new Map(byDay.map((row) => [dayOf(row.run_date), totals(row)]));
    const everyDay = Array.from({ length: days.value }, (_, index) => addDays(from, index));
    return {
      time_zone: context.timeZone,
      from,
      to,
      by_day: everyDay.map((date) => ({ date, ...(perDay.get(date) ?? { runs: 0, run_time: 0 }) })),
      by_org: byOrg.map((row) => ({ org_id: Number(row.org_id), ...totals(row) })),
      by_base: byBase.map((row) => ({ base_uuid: String(row.dtable_uuid), ...totals(row) })),
    };
  });
}

/** Run counts, and run time in seconds to a tenth (short runs would all round to 0). */
function totals(row: TotalsRow): { runs: number; run_time: number } {
  return {
    runs: Math.round(Number(row.runs ?? 0)),
    run_time: Math.round(Number(row.run_time ?? 0) * 10) / 10,
  };
}

/** A DATE as the driver hands it back: a Date at UTC midnight, or `YYYY-MM-DD` text. */
function dayOf(value: unknown): string {
  if (value instanceof Date) return value.toISOString().slice(0, 10);
  return String(value).slice(0, 10);
}
