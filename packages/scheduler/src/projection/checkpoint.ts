import { type Sql, toSqlDateTime } from '../db/sql.ts';

/** The projection whose position `pipeline_checkpoint` keeps for the read model. */
export const readModelProjection = 'read_model';

/**
 * The last stream sequence applied, 0 before the first. With `lock`, the row is locked for
 * the rest of the transaction, so two projectors (two schedulers during a hand-over) apply
 * a batch one after the other and the second skips what the first already applied.
 */
export async function readCheckpoint(
  sql: Sql,
  options: { lock?: boolean; projection?: string } = {},
): Promise<number> {
  const projection = options.projection ?? readModelProjection;
  if (options.lock) {
    await sql.run(
      `INSERT INTO pipeline_checkpoint (projection, stream_sequence, updated_at)
       VALUES (?, 0, ?) ${sql.dialect.onConflictIgnore(['projection'])}`,
      [projection, toSqlDateTime(new Date())],
    );
  }
  const [row] = await sql.all<{ stream_sequence: number | string }>(
    `SELECT stream_sequence FROM pipeline_checkpoint WHERE projection = ?${options.lock ? sql.dialect.forUpdate : ''}`,
    [projection],
  );
  return row ? Number(row.stream_sequence) : 0;
}

export async function writeCheckpoint(
  sql: Sql,
  streamSequence: number,
  projection: string = readModelProjection,
): Promise<void> {
  await sql.run(
    `INSERT INTO pipeline_checkpoint (projection, stream_sequence, updated_at) VALUES (?, ?, ?)
     ${sql.dialect.onConflictUpdate(
       ['projection'],
       (
         incoming,
       ) => `stream_sequence = ${sql.dialect.greatest('stream_sequence', incoming('stream_sequence'))},
         updated_at = ${incoming('updated_at')}`,
     )}`,
    [projection, streamSequence, toSqlDateTime(new Date())],
  );
}
