import type { MikroORM } from '@mikro-orm/mariadb';
import { sqlOf } from '../db/sql.ts';
import { readCheckpoint } from '../projection/checkpoint.ts';
import type { EventFilter } from './eventReader.ts';

/** The runs of a base, an owner or an org that the read model knows, and how far it knows. */
export interface RunIndex {
  runsOf(filter: EventFilter): Promise<{ runIds: number[]; projectedThrough: number }>;
}

/**
 * `audit_run`, which the projector fills with every run's base, owner and org in the same
 * transaction as its checkpoint: every run requested up to the checkpoint is in it.
 */
export function readModelRunIndex(orm: MikroORM): RunIndex {
  return {
    async runsOf(filter) {
      const sql = sqlOf(orm);
      const conditions: string[] = [];
      const params: unknown[] = [];
      for (const [column, value] of [
        ['dtable_uuid', filter.dtableUuid],
        ['owner', filter.owner],
        ['org_id', filter.orgId],
      ] as const) {
        if (value === undefined) continue;
        // Byte for byte, as the log reader compares: the column's collation folds case.
        conditions.push(`${typeof value === 'string' ? sql.dialect.exactly(column) : column} = ?`);
        params.push(value);
      }
      const projectedThrough = await readCheckpoint(sql);
      const rows = await sql.all<{ run_id: number | string }>(
        `SELECT run_id FROM audit_run WHERE ${conditions.join(' AND ')} ORDER BY run_id`,
        params,
      );
      return { runIds: rows.map((row) => Number(row.run_id)), projectedThrough };
    },
  };
}
