import { canonicalUuid } from '@pipeline/events';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { runColumns, type ScriptLogRow, toRunView } from '../runView.ts';
import { positiveInteger, queryValue } from './queryValues.ts';
import { pageWindow, type ReadContext, wholeNumber } from './readModel.ts';
import { plainBadRequest } from './replies.ts';

interface TaskLogParams {
  dtableUuid: string;
  scriptName: string;
}

/** The most runs one page of a script's log may hold. */
export const maxTaskLogsPerPage = 1000;

/**
 * A script's run log, as dtable-web shows it. The name arrives as one path segment,
 * already decoded, and must match exactly: the column's collation folds case, accents and
 * emoji, so the index finds the candidates and a binary comparison keeps the right ones.
 */
export function taskLogRoutes(app: FastifyInstance, context: ReadContext): void {
  const { selectRows, timeZone } = context;
  const scriptRunsWhere = `dtable_uuid = ? AND script_name = ? AND ${context.dialect.exactly('script_name')} = ?`;
  app.get<{ Params: TaskLogParams }>(
    '/tasks/:dtableUuid/:scriptName/logs/',
    async (request, reply) => {
      const dtableUuid = canonicalUuid(request.params.dtableUuid);
      if (dtableUuid === null) return plainBadRequest(reply, 'dtable_uuid invalid.');
      const order = sortOrder(
        queryValue(request.query, 'order_by') ?? queryValue(request.query, 'org_by'),
      );
      if (order === null) return plainBadRequest(reply, 'order_by invalid.');
      const page = positiveInteger(queryValue(request.query, 'page'), 'page', 1);
      if (!page.ok) return plainBadRequest(reply, page.reason);
      const perPage = positiveInteger(
        queryValue(request.query, 'per_page'),
        'per_page',
        20,
        maxTaskLogsPerPage,
      );
      if (!perPage.ok) return plainBadRequest(reply, perPage.reason);

      const scriptName = request.params.scriptName;
      const filter = [dtableUuid, scriptName, scriptName];
      // The count and the page do not depend on each other: ask for both at once.
      const [[counted], rows] = await Promise.all([
        selectRows<{ count: unknown }>(
          `SELECT COUNT(*) AS count FROM script_log WHERE ${scriptRunsWhere}`,
          filter,
        ),
        selectRows<ScriptLogRow>(
          `SELECT ${runColumns} FROM script_log WHERE ${scriptRunsWhere} ORDER BY id ${order} LIMIT ? OFFSET ?`,
          [...filter, ...pageWindow(page.value, perPage.value)],
        ),
      ]);
      return {
        task_logs: rows.map((row) => toRunView(row, timeZone)),
        count: wholeNumber(counted?.count),
      };
    },
  );

  app.get<{ Params: TaskLogParams & { logId: string } }>(
    '/tasks/:dtableUuid/:scriptName/logs/:logId/',
    async (request, reply) => {
      const dtableUuid = canonicalUuid(request.params.dtableUuid);
      if (dtableUuid === null) return plainBadRequest(reply, 'dtable_uuid invalid.');
      const logId = request.params.logId.trim();
      if (!/^\d{1,10}$/.test(logId) || Number(logId) > 2_147_483_647) return logNotFound(reply);

      const [row] = await selectRows<ScriptLogRow>(
        `SELECT ${runColumns} FROM script_log WHERE id = ?`,
        [Number(logId)],
      );
      const belongsHere =
        row !== undefined &&
        canonicalUuid(row.dtable_uuid) === dtableUuid &&
        row.script_name === request.params.scriptName;
      if (!belongsHere) return logNotFound(reply);
      return { task_log: toRunView(row, timeZone) };
    },
  );
}

/** `id` ascending or `-id` descending (the default); anything else is refused. */
function sortOrder(raw: string | undefined): 'ASC' | 'DESC' | null {
  const value = raw?.trim() ?? '-id';
  if (value === '-id') return 'DESC';
  if (value === 'id') return 'ASC';
  return null;
}

function logNotFound(reply: FastifyReply): FastifyReply {
  return reply.code(404).send({ error_msg: 'Script log not found' });
}
