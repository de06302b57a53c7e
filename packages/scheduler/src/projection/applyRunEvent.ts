import type { RunEvent } from '@pipeline/events';
import type { Sql } from '../db/sql.ts';
import { ProjectionBatch, type ProjectionContext } from './projectionBatch.ts';

export type { ProjectionContext } from './projectionBatch.ts';

/**
 * Applies one event of the log to the read model: a batch of one. Every step is idempotent
 * and never moves a run backwards (a late `RunStarted` does not reopen a finished run), so an
 * event applied again after a crash changes nothing; the checkpoint makes that rare anyway.
 */
export async function applyRunEvent(
  sql: Sql,
  seq: number,
  event: RunEvent,
  context: ProjectionContext,
): Promise<void> {
  const batch = await ProjectionBatch.load(sql, [{ seq, event }], context);
  batch.apply({ seq, event });
  await batch.write(sql);
}
