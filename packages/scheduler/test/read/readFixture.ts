import type { MikroORM } from '@mikro-orm/mariadb';
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import { createTestDatabase, type TestDatabase } from '../../../../test/support/mariadb.ts';
import { migrateDatabase, openDatabase } from '../../src/db/orm.ts';
import { sqlOf } from '../../src/db/sql.ts';
import { buildApp } from '../../src/http/app.ts';
import { addToMonthlyTotals } from '../../src/http/read/monthlyTotals.ts';
import { readRoutes } from '../../src/http/readRoutes.ts';
import type { RunAdmission } from '../../src/submission/runAdmission.ts';

export const timeZone = 'Europe/Berlin';
/** The clock of every read test: Friday 4 December 2026, 14:03:07 in Berlin. */
export const now = new Date('2026-12-04T13:03:07Z');

export const authToken = 'read-side-test-token';
export const authorization = `Token ${authToken}`;

export const baseA = '6a1f3c2e-9b7d-4e21-8f0a-0c5d2b7e9a11';
export const baseB = '0b2c4d6e-8f10-4a12-b345-6789abcdef01';
export const baseC = 'ffeeddcc-bbaa-4998-8776-655443322110';

export interface ReadFixture {
  db: TestDatabase;
  orm: MikroORM;
  /** The scheduler's app, as `main` builds it. */
  app: FastifyInstance;
  /** A GET with the token, through the scheduler's app. */
  get(url: string): Promise<LightMyRequestResponse>;
  /**
   * Only the read routes, over the same database, with a clock that shows `clock`
   * (`buildApp` always reads the real clock).
   */
  appAt(clock: Date): Promise<FastifyInstance>;
  close(): Promise<void>;
}

/**
 * A migrated database of the test file's own and the scheduler's app over it;
 * `beforeMigrations` can lay down an original installation's tables and rows first.
 */
export async function startReadFixture(
  label: string,
  options: { beforeMigrations?: (db: TestDatabase) => Promise<void> } = {},
): Promise<ReadFixture> {
  const db = await createTestDatabase(label);
  await options.beforeMigrations?.(db);
  const orm = await openDatabase({
    host: db.host,
    port: db.port,
    user: db.user,
    password: db.password,
    name: db.name,
    poolSize: 4,
  });
  await migrateDatabase(orm);
  const app = await buildApp({
    authToken,
    timeZone,
    maxBodyBytes: 1_000_000,
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    orm,
    // The read routes never submit; a submission reaching this would fail loudly.
    admission: {} as RunAdmission,
  });
  await app.ready();
  const apps: FastifyInstance[] = [app];
  const appAt = async (clock: Date) => {
    const clocked = Fastify({ routerOptions: { maxParamLength: 4096 } });
    await clocked.register(async (scope) => readRoutes(scope, { orm, timeZone, now: () => clock }));
    await clocked.ready();
    apps.push(clocked);
    return clocked;
  };
  return {
    db,
    orm,
    app,
    appAt,
    get: async (url) => await app.inject({ method: 'GET', url, headers: { authorization } }),
    async close() {
      for (const opened of apps) await opened.close();
      await orm.close();
      await db.drop();
    },
  };
}

export interface SeedRun {
  id: number;
  dtable_uuid?: string;
  owner?: string;
  org_id?: number;
  script_name?: string;
  context_data?: string | null;
  created_at?: string | null;
  started_at?: string | null;
  finished_at?: string | null;
  success?: boolean | null;
  return_code?: number | null;
  output?: string | null;
  operate_from?: string;
  state?: 'pending' | 'running' | 'finished';
}

/**
 * Writes runs as the projector does: UTC datetimes, canonical uuids. A run is finished
 * when it has `finished_at`, running when it has only `started_at`, else pending.
 */
export async function seedRuns(db: TestDatabase, runs: SeedRun[]): Promise<void> {
  for (const run of runs) {
    const state =
      run.state ?? (run.finished_at ? 'finished' : run.started_at ? 'running' : 'pending');
    await db.query(
      `INSERT INTO script_log (id, dtable_uuid, owner, org_id, script_name, context_data, created_at,
        started_at, finished_at, success, return_code, output, operate_from, state)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        run.id,
        run.dtable_uuid ?? baseA,
        run.owner ?? 'user-a@example.invalid',
        run.org_id ?? -1,
        run.script_name ?? 't.py',
        run.context_data ?? null,
        run.created_at === undefined ? '2026-12-04 10:00:00' : run.created_at,
        run.started_at ?? null,
        run.finished_at ?? null,
        run.success === undefined || run.success === null ? null : run.success ? 1 : 0,
        run.return_code ?? null,
        run.output ?? null,
        run.operate_from ?? 'manualy',
        state,
      ],
    );
  }
}

export type StatisticsTable =
  | 'user_run_script_statistics'
  | 'org_run_script_statistics'
  | 'dtable_run_script_statistics';

/**
 * Daily statistics rows as the projector keeps them, one per owner and local day, and the
 * monthly totals it adds them to.
 */
export async function seedStatistics(
  target: { db: TestDatabase; orm: MikroORM },
  table: StatisticsTable,
  rows: { owner: string | number; day: string; count: number; time: number; orgId?: number }[],
): Promise<void> {
  for (const row of rows) {
    const counted = { runDate: row.day, runCount: row.count, runTime: row.time };
    if (table === 'user_run_script_statistics') {
      await target.db.query(
        'INSERT INTO user_run_script_statistics (username, org_id, run_date, total_run_count, total_run_time, update_at) VALUES (?, ?, ?, ?, ?, NOW())',
        [row.owner, row.orgId ?? -1, row.day, row.count, row.time],
      );
      await addToMonthlyTotals(sqlOf(target.orm), { ...counted, username: String(row.owner) });
    } else if (table === 'org_run_script_statistics') {
      await target.db.query(
        'INSERT INTO org_run_script_statistics (org_id, run_date, total_run_count, total_run_time, update_at) VALUES (?, ?, ?, ?, NOW())',
        [row.owner, row.day, row.count, row.time],
      );
      await addToMonthlyTotals(sqlOf(target.orm), { ...counted, orgId: Number(row.owner) });
    } else {
      await target.db.query(
        'INSERT INTO dtable_run_script_statistics (dtable_uuid, run_date, total_run_count, total_run_time, update_at) VALUES (?, ?, ?, ?, NOW())',
        [row.owner, row.day, row.count, row.time],
      );
      await addToMonthlyTotals(sqlOf(target.orm), { ...counted, dtableUuid: String(row.owner) });
    }
  }
}

/** The parsed JSON body of an answer. */
export function bodyOf<T = Record<string, unknown>>(response: LightMyRequestResponse): T {
  return JSON.parse(response.body) as T;
}
