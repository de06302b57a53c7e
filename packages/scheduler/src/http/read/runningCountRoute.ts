import type { FastifyInstance } from 'fastify';
import { localDate } from '../runView.ts';
import { monthValue, orgIdValue, queryValue } from './queryValues.ts';
import { type ReadContext, wholeNumber } from './readModel.ts';
import { plainBadRequest } from './replies.ts';
import { monthDays } from './zonedTime.ts';

/** The month a request names, or the current one in the configured zone. */
export function requestedMonth(
  raw: string | undefined,
  clock: Pick<ReadContext, 'timeZone' | 'now'>,
) {
  return raw === undefined
    ? monthValue(localDate(clock.now(), clock.timeZone).slice(0, 7))
    : monthValue(raw);
}

/**
 * How many runs an owner has used this month (dtable-web's account page, and the quota):
 * an org's when `org_id` names one, else the user's. The statistics rows are days in the
 * configured zone, so a month is a range of `run_date`s.
 */
export function runningCountRoute(app: FastifyInstance, context: ReadContext): void {
  const { selectRows } = context;
  app.get('/scripts-running-count/', async (request, reply) => {
    const month = requestedMonth(queryValue(request.query, 'month'), context);
    if (!month.ok) return plainBadRequest(reply, 'month invalid.');
    const username = queryValue(request.query, 'username');
    const rawOrgId = queryValue(request.query, 'org_id');
    if (username === undefined && rawOrgId === undefined) {
      return plainBadRequest(reply, 'username or org_id invalid.');
    }

    const { first, next } = monthDays(month.value);
    if (rawOrgId !== undefined) {
      const orgId = orgIdValue(rawOrgId);
      if (!orgId.ok || orgId.value === -1) return plainBadRequest(reply, 'org_id invalid.');
      const [total] = await selectRows<{ count: unknown }>(
        'SELECT SUM(total_run_count) AS count FROM org_run_script_statistics WHERE org_id = ? AND run_date >= ? AND run_date < ?',
        [orgId.value, first, next],
      );
      return { count: wholeNumber(total?.count) };
    }

    const [total] = await selectRows<{ count: unknown }>(
      'SELECT SUM(total_run_count) AS count FROM user_run_script_statistics WHERE username = ? AND run_date >= ? AND run_date < ?',
      [username, first, next],
    );
    return { count: wholeNumber(total?.count) };
  });
}
