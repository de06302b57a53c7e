import type { MikroORM } from '@mikro-orm/mariadb';
import type { SqlDialect } from '../../db/dialect.ts';
import { withinDeadline } from '../httpErrors.ts';

/** Runs one read query against the read model and returns its rows. */
export type SelectRows = <Row>(sql: string, params?: readonly unknown[]) => Promise<Row[]>;

/**
 * Plain SQL over the ORM's pool: the read model is the original's tables, shaped for
 * these queries, and the driver hands datetimes back as UTC text (`runView` reads them).
 * A query that has not answered within `deadlineMs` fails as unavailable (503), so a
 * stalled database never leaves dtable-web waiting (BC-17).
 */
export function selectRowsWith(orm: MikroORM, deadlineMs: number): SelectRows {
  return async <Row>(sql: string, params: readonly unknown[] = []) =>
    await withinDeadline(deadlineMs, () =>
      orm.em.getConnection().execute<Row[]>(sql, params, 'all'),
    );
}

/** A SUM or COUNT as the driver returns it (text for DECIMAL sums, null over no rows). */
export function wholeNumber(value: unknown): number {
  if (value === null || value === undefined) return 0;
  return Math.round(Number(value));
}

/** The `LIMIT ? OFFSET ?` values of a page. */
export function pageWindow(page: number, perPage: number): [number, number] {
  return [perPage, (page - 1) * perPage];
}

/** What every read route needs: the read model, the configured zone and the clock. */
export interface ReadContext {
  selectRows: SelectRows;
  /** The forms in which the read model's SQL differs between MariaDB and SQLite. */
  dialect: SqlDialect;
  /** IANA zone of statistics days and of the times in answers (`TIME_ZONE`). */
  timeZone: string;
  now: () => Date;
}
