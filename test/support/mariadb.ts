import { randomBytes } from 'node:crypto';
import { createConnection } from 'mysql2/promise';

export interface TestDatabase {
  host: string;
  port: number;
  user: string;
  password: string;
  name: string;
  /** Runs SQL against the test database (for seeding and direct checks). */
  query<T = Record<string, unknown>>(sql: string, values?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
}

/** A database of the test file's own on the shared MariaDB, dropped afterwards. */
export async function createTestDatabase(label = 'test'): Promise<TestDatabase> {
  const host = process.env.TEST_DB_HOST ?? '127.0.0.1';
  const port = Number(process.env.TEST_DB_PORT ?? 3306);
  const user = process.env.TEST_DB_USER ?? 'root';
  const password = process.env.TEST_DB_PASSWORD ?? '';
  const name = `pipeline_${label.replace(/[^a-z0-9_]/gi, '_')}_${randomBytes(4).toString('hex')}`;
  const connection = await createConnection({ host, port, user, password, charset: 'utf8mb4' });
  await connection.query(
    `CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`,
  );
  await connection.changeUser({ database: name });
  return {
    host,
    port,
    user,
    password,
    name,
    async query<T>(sql: string, values: unknown[] = []) {
      const [rows] = await connection.query(sql, values);
      return rows as T[];
    },
    async drop() {
      await connection.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await connection.end();
    },
  };
}
