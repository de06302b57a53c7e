import type { RunRequested } from '@pipeline/events';
import { type Sql, toSqlDateTime } from '../db/sql.ts';

/**
 * Writes the pending `script_log` row of a requested run. Both the submission (so that an
 * immediate GET finds the run) and the projector (the log is the source of truth) write
 * it, with the same values; whichever comes second changes nothing, and a row that already
 * moved on (running, finished) never moves back.
 */
export async function insertRequestedRun(
  sql: Sql,
  runId: number,
  event: RunRequested,
): Promise<void> {
  await insertRequestedRuns(sql, [{ runId, event }]);
}

/** The same for many runs, in one statement. */
export async function insertRequestedRuns(
  sql: Sql,
  runs: readonly { runId: number; event: RunRequested }[],
): Promise<void> {
  if (runs.length === 0) return;
  const values = runs.map(() => "(?, ?, ?, ?, ?, ?, ?, 'pending', ?)").join(', ');
  const params = runs.flatMap(({ runId, event }) => {
    const request = event.data;
    return [
      runId,
      request.dtableUuid,
      request.owner,
      request.orgId,
      request.scriptName,
      request.contextData === null ? null : JSON.stringify(request.contextData),
      request.operateFrom,
      toSqlDateTime(event.occurredAt),
    ];
  });
  await sql.run(
    `INSERT INTO script_log
       (id, dtable_uuid, owner, org_id, script_name, context_data, operate_from, state, created_at)
     VALUES ${values}
     ${sql.dialect.onConflictIgnore(['id'])}`,
    params,
  );
}
