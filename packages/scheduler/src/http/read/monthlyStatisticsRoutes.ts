import type { FastifyInstance } from 'fastify';
import { type Parsed, positiveInteger, queryValue } from './queryValues.ts';
import { pageWindow, type ReadContext, wholeNumber } from './readModel.ts';
import { plainBadRequest } from './replies.ts';
import { requestedMonth } from './runningCountRoute.ts';

/** One way of totalling a month: whose monthly totals, and how an owner is named in answers. */
interface OwnerKind {
  path: string;
  /** The monthly totals of the daily table (see Migration0004MonthlyStatistics). */
  table: string;
  column: string;
  /** Rows that are not owners of this kind (org -1 means "no org"). */
  exclude?: string;
  answerKey: 'username' | 'org_id' | 'base_uuid';
  answerValue: (stored: unknown) => string | number;
}

const ownerKinds: OwnerKind[] = [
  {
    path: '/admin/statistics/scripts-running/by-user/',
    table: 'user_run_script_statistics_monthly',
    column: 'username',
    answerKey: 'username',
    answerValue: String,
  },
  {
    path: '/admin/statistics/scripts-running/by-org/',
    table: 'org_run_script_statistics_monthly',
    column: 'org_id',
    exclude: 'org_id <> -1',
    answerKey: 'org_id',
    answerValue: Number,
  },
  {
    path: '/admin/statistics/scripts-running/by-base/',
    table: 'dtable_run_script_statistics_monthly',
    column: 'dtable_uuid',
    answerKey: 'base_uuid',
    answerValue: String,
  },
];

export const maxStatisticsPerPage = 1000;

/**
 * The admin's monthly totals per user, org and base. They are read from the monthly
 * totals of the daily statistics rows, which hold one row per owner and month, so a page
 * sorted by a total costs a sort of the month's owners, not a sum over their days.
 * Without `order_by` owners come in ascending order of their name or id; ties of the
 * ordered total fall back to that order, so pages never overlap.
 */
export function monthlyStatisticsRoutes(app: FastifyInstance, context: ReadContext): void {
  for (const kind of ownerKinds) {
    app.get(kind.path, async (request, reply) => {
      const month = requestedMonth(queryValue(request.query, 'month'), context);
      if (!month.ok) return plainBadRequest(reply, 'month invalid.');
      const order = totalsOrder(
        queryValue(request.query, 'order_by'),
        queryValue(request.query, 'direction'),
      );
      if (!order.ok) return plainBadRequest(reply, order.reason);
      const page = positiveInteger(queryValue(request.query, 'page'), 'page', 1);
      if (!page.ok) return plainBadRequest(reply, page.reason);
      const perPage = positiveInteger(
        queryValue(request.query, 'per_page'),
        'per_page',
        25,
        maxStatisticsPerPage,
      );
      if (!perPage.ok) return plainBadRequest(reply, perPage.reason);

      const where = `month = ?${kind.exclude ? ` AND ${kind.exclude}` : ''}`;
      const monthStart = `${month.value}-01`;
      // The count and the page do not depend on each other: ask for both at once.
      const [[owners], totals] = await Promise.all([
        context.selectRows<{ count: unknown }>(
          `SELECT COUNT(*) AS count FROM ${kind.table} WHERE ${where}`,
          [monthStart],
        ),
        context.selectRows<{
          owner: unknown;
          run_count: unknown;
          run_time: unknown;
        }>(
          `SELECT ${kind.column} AS owner, total_run_count AS run_count, total_run_time AS run_time
           FROM ${kind.table} WHERE ${where}
           ORDER BY ${order.value} ${kind.column} ASC LIMIT ? OFFSET ?`,
          [monthStart, ...pageWindow(page.value, perPage.value)],
        ),
      ]);
      return {
        month: month.value,
        count: wholeNumber(owners?.count),
        results: totals.map((total) => ({
          [kind.answerKey]: kind.answerValue(total.owner),
          total_run_count: wholeNumber(total.run_count),
          total_run_time: wholeNumber(total.run_time),
        })),
      };
    });
  }
}

/**
 * The ORDER BY prefix for `order_by` and `direction`. A leading `-` and `direction=desc`
 * both mean descending and may be combined; `-x` with `direction=asc` contradicts itself
 * and is refused. `direction` alone changes nothing (there is no field to apply it to).
 */
export function totalsOrder(
  orderBy: string | undefined,
  direction: string | undefined,
): Parsed<string> {
  const normalisedDirection = direction?.trim().toLowerCase();
  if (
    normalisedDirection !== undefined &&
    normalisedDirection !== 'asc' &&
    normalisedDirection !== 'desc'
  ) {
    return { ok: false, reason: 'direction invalid.' };
  }
  if (orderBy === undefined) return { ok: true, value: '' };

  const match = /^(-?)(total_run_time|total_run_count)$/.exec(orderBy.trim());
  if (!match) return { ok: false, reason: 'order_by invalid.' };
  if (match[1] === '-' && normalisedDirection === 'asc')
    return { ok: false, reason: 'direction invalid.' };
  const descending = match[1] === '-' || normalisedDirection === 'desc';
  const sum = match[2] === 'total_run_time' ? 'run_time' : 'run_count';
  return { ok: true, value: `${sum} ${descending ? 'DESC' : 'ASC'},` };
}
