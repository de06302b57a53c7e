import type { FastifyInstance } from 'fastify';
import type { SqlDialect } from '../../db/dialect.ts';
import {
  addBaseAndTimeRange,
  orgIdValue,
  type Parsed,
  positiveInteger,
  queryValue,
} from './queryValues.ts';
import { pageWindow, type ReadContext, wholeNumber } from './readModel.ts';
import { jsonBadRequest } from './replies.ts';
import { localDayExpression, utcOfSql } from './runDay.ts';

export const maxRunStatisticsPerPage = 1000;

/**
 * The counters of both endpoints, over finished runs only. A run that never started
 * (refused, its script missing) counts as an unsuccessful run with no run time; the
 * run time is summed to the microsecond and rounded once, to whole seconds.
 */
const countersIn = (dialect: SqlDialect) => `COUNT(*) AS number_of_runs,
  SUM(${dialect.greatest(dialect.microsecondsBetween('started_at', 'finished_at'), '0')}) AS run_time_us,
  SUM(operate_from = 'manualy') AS triggered_manually,
  SUM(operate_from = 'automation-rule') AS triggered_by_automation_rule,
  SUM(success = 1) AS successful_runs,
  SUM(success = 0) AS unsuccessful_runs`;

interface CounterRow {
  number_of_runs: unknown;
  run_time_us: unknown;
  triggered_manually: unknown;
  triggered_by_automation_rule: unknown;
  successful_runs: unknown;
  unsuccessful_runs: unknown;
}

interface RunStatisticsRequest {
  where: string;
  params: unknown[];
  limit: [number, number];
}

/**
 * An org's runs per base and per day, computed from `script_log` over the runs that
 * finished in `[start, end)`. A day is a calendar day in the configured zone, as in the
 * statistics tables, so a run finished at 23:30 UTC on 30 November is a December run in
 * Berlin. Bases come in ascending uuid order, days in ascending date order.
 */
export function runStatisticsRoutes(app: FastifyInstance, context: ReadContext): void {
  app.get('/admin/statistics/by-base/', async (request, reply) => {
    const parsed = runStatisticsRequest(request.query, context.timeZone, false);
    if (!parsed.ok) return jsonBadRequest(reply, parsed.reason);
    const { where, params, limit } = parsed.value;
    const counters = countersIn(context.dialect);

    // The count and the page do not depend on each other: ask for both at once.
    const [[counted], rows] = await Promise.all([
      context.selectRows<{ count: unknown }>(
        `SELECT COUNT(DISTINCT dtable_uuid) AS count FROM script_log ${where}`,
        params,
      ),
      context.selectRows<CounterRow & { dtable_uuid: string }>(
        `SELECT dtable_uuid, ${counters} FROM script_log ${where}
         GROUP BY dtable_uuid ORDER BY dtable_uuid LIMIT ? OFFSET ?`,
        [...params, ...limit],
      ),
    ]);
    return {
      results: rows.map((row) => ({ base_uuid: row.dtable_uuid, ...counterValues(row) })),
      total_count: wholeNumber(counted?.count),
    };
  });

  app.get('/admin/statistics/by-day/', async (request, reply) => {
    const parsed = runStatisticsRequest(request.query, context.timeZone, true);
    if (!parsed.ok) return jsonBadRequest(reply, parsed.reason);
    const { where, params, limit } = parsed.value;

    const span = await finishedSpan(context, where, params);
    if (span === null) return { results: [], total_count: 0 };
    const day = localDayExpression(
      'finished_at',
      span.first,
      span.last,
      context.timeZone,
      context.dialect,
    );
    const counters = countersIn(context.dialect);

    // The count and the page do not depend on each other: ask for both at once.
    const [[counted], rows] = await Promise.all([
      context.selectRows<{ count: unknown }>(
        `SELECT COUNT(DISTINCT ${day.sql}) AS count FROM script_log ${where}`,
        [...day.params, ...params],
      ),
      context.selectRows<CounterRow & { run_day: string }>(
        `SELECT ${day.sql} AS run_day, ${counters} FROM script_log ${where}
         GROUP BY run_day ORDER BY run_day LIMIT ? OFFSET ?`,
        [...day.params, ...params, ...limit],
      ),
    ]);
    return {
      results: rows.map((row) => ({
        date: String(row.run_day).slice(0, 10),
        ...counterValues(row),
      })),
      total_count: wholeNumber(counted?.count),
    };
  });
}

function runStatisticsRequest(
  query: unknown,
  timeZone: string,
  acceptsBase: boolean,
): Parsed<RunStatisticsRequest> {
  const rawOrgId = queryValue(query, 'org_id');
  if (rawOrgId === undefined) return { ok: false, reason: 'org_id is required' };
  const orgId = orgIdValue(rawOrgId);
  if (!orgId.ok) return orgId;
  const conditions = ['org_id = ?', 'finished_at IS NOT NULL'];
  const params: unknown[] = [orgId.value];

  const filtered = addBaseAndTimeRange(
    query,
    timeZone,
    'finished_at',
    conditions,
    params,
    acceptsBase,
  );
  if (!filtered.ok) return filtered;

  const page = positiveInteger(queryValue(query, 'page'), 'page', 1);
  if (!page.ok) return page;
  const perPage = positiveInteger(
    queryValue(query, 'per_page'),
    'per_page',
    100,
    maxRunStatisticsPerPage,
  );
  if (!perPage.ok) return perPage;

  const where = `WHERE ${conditions.join(' AND ')}`;
  return {
    ok: true,
    value: { where, params, limit: pageWindow(page.value, perPage.value) },
  };
}

/**
 * The first and last finish of the matching runs: the zone's offsets are needed only
 * between them, however wide the requested range (one index lookup each end).
 */
async function finishedSpan(
  context: ReadContext,
  where: string,
  params: unknown[],
): Promise<{ first: Date; last: Date } | null> {
  const [span] = await context.selectRows<{ first: string | null; last: string | null }>(
    `SELECT MIN(finished_at) AS first, MAX(finished_at) AS last FROM script_log ${where}`,
    params,
  );
  if (!span?.first || !span.last) return null;
  return { first: utcOfSql(span.first), last: utcOfSql(span.last) };
}

function counterValues(row: CounterRow) {
  return {
    number_of_runs: wholeNumber(row.number_of_runs),
    total_run_time: wholeNumber(Number(row.run_time_us ?? 0) / 1_000_000),
    triggered_manually: wholeNumber(row.triggered_manually),
    triggered_by_automation_rule: wholeNumber(row.triggered_by_automation_rule),
    successful_runs: wholeNumber(row.successful_runs),
    unsuccessful_runs: wholeNumber(row.unsuccessful_runs),
  };
}
