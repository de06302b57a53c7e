import type { FastifyInstance } from 'fastify';
import { type RunView, type ScriptLogRow, toRunView } from '../runView.ts';
import {
  addBaseAndTimeRange,
  orgIdValue,
  type Parsed,
  positiveInteger,
  queryValue,
} from './queryValues.ts';
import { pageWindow, type ReadContext, wholeNumber } from './readModel.ts';
import { jsonBadRequest } from './replies.ts';

export const maxRunsPerPage = 1000;

/** Every `<run>` column but the two large ones, which the list leaves out. */
const listedColumns =
  'id, dtable_uuid, owner, org_id, script_name, started_at, finished_at, success, ' +
  'return_code, operate_from, state, created_at';

export type ListedRun = Omit<RunView, 'context_data' | 'output'>;

interface RunFilter {
  where: string;
  params: unknown[];
}

/**
 * The admin's list of runs, newest first. `start` and `end` bound the time the run was
 * requested (`created_at`), so queued and running runs are listed too.
 */
export function adminRunsRoute(app: FastifyInstance, context: ReadContext): void {
  app.get('/admin/runs/', async (request, reply) => {
    const filter = runFilter(request.query, context.timeZone);
    if (!filter.ok) return jsonBadRequest(reply, filter.reason);
    const page = positiveInteger(queryValue(request.query, 'page'), 'page', 1);
    if (!page.ok) return jsonBadRequest(reply, page.reason);
    const perPage = positiveInteger(
      queryValue(request.query, 'per_page'),
      'per_page',
      100,
      maxRunsPerPage,
    );
    if (!perPage.ok) return jsonBadRequest(reply, perPage.reason);

    const { where, params } = filter.value;
    // The count and the page do not depend on each other: ask for both at once.
    const [counted, rows] = await Promise.all([
      totalCount(context, where, params),
      context.selectRows<Omit<ScriptLogRow, 'context_data' | 'output'>>(
        `SELECT ${listedColumns} FROM script_log ${where}
         ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`,
        [...params, ...pageWindow(page.value, perPage.value)],
      ),
    ]);
    return {
      runs: rows.map((row) => listedRun(row, context.timeZone)),
      total_count: counted,
    };
  });
}

/**
 * Without any filter the count is the whole table, a scan of about 65 ms for a million runs
 * (bench/readModel.bench.ts); that one count is kept for a few seconds, so a page through
 * the list is fast and its total at most that old. Filtered counts use their index ranges.
 */
const unfilteredCountMs = 5000;
const unfilteredCounts = new WeakMap<ReadContext, { at: number; count: Promise<number> }>();

async function totalCount(context: ReadContext, where: string, params: unknown[]): Promise<number> {
  const count = async () => {
    const [counted] = await context.selectRows<{ count: unknown }>(
      `SELECT COUNT(*) AS count FROM script_log ${where}`,
      params,
    );
    return wholeNumber(counted?.count);
  };
  if (where !== '') return await count();
  const cached = unfilteredCounts.get(context);
  if (cached && Date.now() - cached.at < unfilteredCountMs) return await cached.count;
  const fresh = { at: Date.now(), count: count() };
  unfilteredCounts.set(context, fresh);
  fresh.count.catch(() => unfilteredCounts.delete(context));
  return await fresh.count;
}

function runFilter(query: unknown, timeZone: string): Parsed<RunFilter> {
  const conditions: string[] = [];
  const params: unknown[] = [];

  const rawOrgId = queryValue(query, 'org_id');
  if (rawOrgId !== undefined) {
    const orgId = orgIdValue(rawOrgId);
    if (!orgId.ok) return orgId;
    conditions.push('org_id = ?');
    params.push(orgId.value);
  }

  const filtered = addBaseAndTimeRange(query, timeZone, 'created_at', conditions, params, true);
  if (!filtered.ok) return filtered;

  const where = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
  return { ok: true, value: { where, params } };
}

function listedRun(
  row: Omit<ScriptLogRow, 'context_data' | 'output'>,
  timeZone: string,
): ListedRun {
  const run: Partial<RunView> = toRunView({ ...row, context_data: null, output: null }, timeZone);
  delete run.context_data;
  delete run.output;
  return run as ListedRun;
}
