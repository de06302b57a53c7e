import type { Transaction } from '@mikro-orm/core';
import { type MikroORM, SqlitePlatform } from '@mikro-orm/mariadb';
import { isTransactionConflict } from './dbErrors.ts';
import { mariadbDialect, type SqlDialect, sqliteDialect } from './dialect.ts';

/**
 * Plain SQL on the read model, inside a transaction or not. Parameters are `?`
 * placeholders, escaped by the driver's platform (so the SQL text itself must not contain a
 * literal question mark).
 */
export interface Sql {
  all<Row>(query: string, params?: readonly unknown[]): Promise<Row[]>;
  run(query: string, params?: readonly unknown[]): Promise<{ affectedRows: number }>;
  /** The forms in which this database's SQL differs from the other's. */
  readonly dialect: SqlDialect;
}

/** The dialect of the database `orm` opened: SQLite for a file, MariaDB otherwise. */
export function dialectOf(orm: MikroORM): SqlDialect {
  return orm.em.getPlatform() instanceof SqlitePlatform ? sqliteDialect : mariadbDialect;
}

export function sqlOf(orm: MikroORM, transaction?: Transaction): Sql {
  const connection = orm.em.getConnection();
  return {
    dialect: dialectOf(orm),
    async all<Row>(query: string, params: readonly unknown[] = []) {
      return await connection.execute<Row[]>(query, params, 'all', transaction);
    },
    async run(query: string, params: readonly unknown[] = []) {
      const result = await connection.execute<{ affectedRows: number }>(
        query,
        params,
        'run',
        transaction,
      );
      return { affectedRows: result.affectedRows };
    },
  };
}

/**
 * Runs `work` in one transaction, committed when it returns and rolled back when it throws.
 * A deadlock or lock-wait timeout is retried a few times: InnoDB chose this transaction as
 * the victim, and a second attempt sees the winner's rows.
 */
export async function inTransaction<T>(
  orm: MikroORM,
  work: (sql: Sql) => Promise<T>,
  attempts = 4,
): Promise<T> {
  const connection = orm.em.getConnection();
  for (let attempt = 1; ; attempt++) {
    try {
      return await connection.transactional(async (transaction) => work(sqlOf(orm, transaction)));
    } catch (error) {
      if (attempt >= attempts || !isTransactionConflict(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 5 * attempt + Math.random() * 20));
    }
  }
}

/**
 * An instant as a DATETIME(6) literal in UTC: `2026-12-04 13:03:07.123000`, the form MariaDB
 * answers with. SQLite keeps this text as it is, so its datetimes compare as text exactly as
 * the instants compare (every one has the same six fraction digits).
 */
export function toSqlDateTime(instant: Date | string): string {
  const date = typeof instant === 'string' ? new Date(instant) : instant;
  return `${date.toISOString().replace('T', ' ').replace('Z', '')}000`;
}

/** A DATETIME as the driver returns it (`2026-12-04 13:03:07.123456`, UTC) as an instant. */
export function fromSqlDateTime(value: string | Date | null): Date | null {
  if (value === null) return null;
  if (value instanceof Date) return value;
  const instant = new Date(`${value.replace(' ', 'T').slice(0, 23)}Z`);
  return Number.isNaN(instant.getTime()) ? null : instant;
}
