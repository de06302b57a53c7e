import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { MikroORM } from '@mikro-orm/mariadb';
import type { RunEvent } from '@pipeline/events';
import type { FastifyInstance } from 'fastify';
import {
  migrationsList,
  sqliteCounterparts,
  sqliteMigrationsList,
} from '../../src/db/migrations/index.ts';
import { migrateDatabase, openDatabase } from '../../src/db/orm.ts';
import { dialectOf, sqlOf } from '../../src/db/sql.ts';
import { buildApp } from '../../src/http/app.ts';
import { RunProjection } from '../../src/projection/runProjection.ts';
import { deleteExpiredRows } from '../../src/retention/retention.ts';
import type { RunAdmission } from '../../src/submission/runAdmission.ts';
import { append, runClaimed, runFinished, runRequested, runStarted } from '../support/events.ts';
import { type Services, startServices, testLogger } from '../support/harness.ts';

// One log, projected by two projectors: into MariaDB and into a SQLite file. The read side
// of the contract must answer the same JSON from both.
const timeZone = 'Europe/Berlin';
const authToken = 'sqlite-parity-token';
const baseA = '6a1f3c2e-9b7d-4e21-8f0a-0c5d2b7e9a11';
const baseB = '0b2c4d6e-8f10-4a12-b345-6789abcdef01';

let services: Services;
let sqliteDir: string;
let sqliteOrm: MikroORM;
const projections: RunProjection[] = [];
const apps: { mariadb?: FastifyInstance; sqlite?: FastifyInstance } = {};
const runIds: number[] = [];

/** The scheduler's app over one read model; these tests only read. */
async function readApp(orm: MikroORM): Promise<FastifyInstance> {
  const app = await buildApp({
    authToken,
    timeZone,
    maxBodyBytes: 1_000_000,
    logger: testLogger(),
    orm,
    admission: {} as RunAdmission,
  });
  await app.ready();
  return app;
}

function projectInto(orm: MikroORM): RunProjection {
  const projection = new RunProjection({
    orm,
    eventLog: services.eventLog,
    timeZone,
    logger: testLogger(),
  });
  projection.start();
  projections.push(projection);
  return projection;
}

/** A run from request to finish; `started` null is a run refused before it ran. */
async function finishedRun(
  request: Parameters<typeof runRequested>[0],
  started: string | null,
  finished: string,
  outcome: Partial<Extract<RunEvent, { type: 'RunFinished' }>['data']> = {},
): Promise<number> {
  const requestedAt = new Date(new Date(started ?? finished).getTime() - 2000);
  const runId = await append(services.eventLog, runRequested(request, requestedAt));
  await append(services.eventLog, runClaimed(runId));
  if (started !== null) await append(services.eventLog, runStarted(runId, new Date(started)));
  await append(
    services.eventLog,
    runFinished(runId, started === null ? null : new Date(started), new Date(finished), outcome),
  );
  runIds.push(runId);
  return runId;
}

before(async () => {
  services = await startServices('sqlite_parity');
  sqliteDir = await mkdtemp(join(tmpdir(), 'pipeline-sqlite-parity-'));
  sqliteOrm = await openDatabase({
    ...services.db,
    sqliteFile: join(sqliteDir, 'read-model.sqlite'),
  });
  await migrateDatabase(sqliteOrm);

  const user = 'user-a@example.invalid';
  const other = 'user-b@example.invalid';
  // Three local days in Berlin, one run across midnight UTC (a December run in Berlin).
  await finishedRun(
    { owner: user, dtableUuid: baseA },
    '2026-12-01T09:00:00Z',
    '2026-12-01T09:00:02.250Z',
  );
  await finishedRun(
    { owner: user, dtableUuid: baseA, scriptName: 'report.py' },
    '2026-11-30T22:59:00Z',
    '2026-11-30T23:30:00.500Z',
    { output: 'late 🌙\n' },
  );
  await finishedRun(
    { owner: other, orgId: 7, dtableUuid: baseB, operateFrom: 'automation-rule' },
    '2026-12-02T10:00:00Z',
    '2026-12-02T10:01:40Z',
    { success: false, returnCode: 1, output: 'Traceback: boom\n' },
  );
  await finishedRun(
    { owner: other, orgId: 7, dtableUuid: baseA },
    '2026-12-03T08:00:00.125Z',
    '2026-12-03T08:00:09.875Z',
  );
  await finishedRun(
    { owner: '42@seafile_group', orgId: 7, dtableUuid: baseB },
    '2026-12-03T12:00:00Z',
    '2026-12-03T12:00:30Z',
    { timedOut: true, success: false, returnCode: -1 },
  );
  await finishedRun({ owner: user, dtableUuid: baseB }, null, '2026-12-04T07:00:00Z', {
    success: false,
    returnCode: -1,
    output: 'Script not found\n',
  });
  // Still open: one running, one waiting.
  const running = await append(
    services.eventLog,
    runRequested({ owner: user, dtableUuid: baseA }, new Date('2026-12-04T12:00:00Z')),
  );
  await append(services.eventLog, runClaimed(running));
  await append(services.eventLog, runStarted(running, new Date('2026-12-04T12:00:01Z')));
  const pending = await append(
    services.eventLog,
    runRequested({ owner: other, orgId: 7, dtableUuid: baseB }, new Date('2026-12-04T13:00:00Z')),
  );
  runIds.push(running, pending);

  const last = pending;
  const [intoMariadb, intoSqlite] = [projectInto(services.orm), projectInto(sqliteOrm)];
  await Promise.all([intoMariadb.waitFor(last), intoSqlite.waitFor(last)]);
  apps.mariadb = await readApp(services.orm);
  apps.sqlite = await readApp(sqliteOrm);
});

after(async () => {
  for (const projection of projections) await projection.stop();
  await apps.mariadb?.close();
  await apps.sqlite?.close();
  await sqliteOrm?.close(true);
  await services?.close();
  if (sqliteDir) await rm(sqliteDir, { recursive: true, force: true });
});

/** The answer of both read models to one GET, parsed. */
async function bothAnswer(url: string) {
  const [mariadb, sqlite] = await Promise.all(
    [apps.mariadb, apps.sqlite].map(async (app) => {
      assert.ok(app);
      const response = await app.inject({
        method: 'GET',
        url,
        headers: { authorization: `Token ${authToken}` },
      });
      return { status: response.statusCode, body: JSON.parse(response.body) as unknown };
    }),
  );
  assert.ok(mariadb && sqlite);
  return { mariadb, sqlite };
}

describe('SQLite read model', () => {
  test('is a SQLite file, migrated once', async () => {
    assert.equal(dialectOf(sqliteOrm).name, 'sqlite');
    assert.equal(dialectOf(services.orm).name, 'mariadb');
    assert.deepEqual(await migrateDatabase(sqliteOrm), []);
    const tables = await sqlOf(sqliteOrm).all<{ name: string }>(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '%script%' ORDER BY name",
    );
    assert.deepEqual(
      tables.map((table) => table.name),
      [
        'dtable_run_script_statistics',
        'dtable_run_script_statistics_monthly',
        'org_run_script_statistics',
        'org_run_script_statistics_monthly',
        'script_log',
        'user_run_script_statistics',
        'user_run_script_statistics_monthly',
      ],
    );
  });

  test('has a SQLite counterpart for every MariaDB migration', () => {
    const sqliteNames = sqliteMigrationsList.map((migration) => migration.name);

    assert.deepEqual(
      migrationsList.map((migration) => migration.name),
      Object.keys(sqliteCounterparts),
    );
    for (const counterpart of Object.values(sqliteCounterparts)) {
      assert.ok(sqliteNames.includes(counterpart), counterpart);
    }
  });

  // `#0` stands for the id of the first run appended above, and so on.
  const endpoints = [
    `/run-script/#0/?dtable_uuid=${baseA}&script_name=t.py`,
    `/run-script/#2/?dtable_uuid=${baseB}&script_name=t.py`,
    `/run-script/#5/?dtable_uuid=${baseB}&script_name=t.py`,
    `/run-script/#6/?dtable_uuid=${baseA}&script_name=t.py`,
    `/tasks/${baseA}/t.py/logs/`,
    `/tasks/${baseA}/T.py/logs/`,
    `/tasks/${baseA}/report.py/logs/?order_by=id&per_page=1`,
    `/tasks/${baseB}/t.py/logs/#2/`,
    '/scripts-running-count/?username=user-a@example.invalid&month=2026-12',
    '/scripts-running-count/?org_id=7&month=2026-12',
    '/scripts-running-count/?username=user-a@example.invalid&month=2026-11',
    '/admin/statistics/scripts-running/by-user/?month=2026-12',
    '/admin/statistics/scripts-running/by-org/?month=2026-12&order_by=-total_run_time',
    '/admin/statistics/scripts-running/by-base/?month=2026-12&order_by=total_run_count&direction=desc',
    '/admin/runs/',
    '/admin/runs/?org_id=7&start=2026-12-02&end=2026-12-03',
    `/admin/runs/?base_uuid=${baseA}&per_page=2&page=2`,
    '/admin/statistics/by-base/?org_id=-1',
    '/admin/statistics/by-base/?org_id=7&start=2026-12-01T00:00:00&end=2026-12-31',
    '/admin/statistics/by-day/?org_id=-1',
    `/admin/statistics/by-day/?org_id=7&base_uuid=${baseB}`,
    '/admin/statistics/by-day/?org_id=7&start=2026-12-03&end=2026-12-03',
    '/admin/dashboard/statistics/?days=90',
  ];
  for (const endpoint of endpoints) {
    test(`answers ${endpoint} as MariaDB does`, async () => {
      const url = endpoint.replace(/#(\d+)/, (_, index: string) => String(runIds[Number(index)]));
      const { mariadb, sqlite } = await bothAnswer(url);

      assert.equal(mariadb.status, 200);
      assert.deepEqual(sqlite, mariadb);
    });
  }

  test('counts the runs per local day as MariaDB does, with their run time', async () => {
    const { sqlite } = await bothAnswer('/admin/statistics/by-day/?org_id=-1');

    assert.deepEqual(
      (
        sqlite.body as {
          results: { date: string; number_of_runs: number; total_run_time: number }[];
        }
      ).results.map(({ date, number_of_runs, total_run_time }) => ({
        date,
        number_of_runs,
        total_run_time,
      })),
      [
        { date: '2026-12-01', number_of_runs: 2, total_run_time: 1863 },
        { date: '2026-12-04', number_of_runs: 1, total_run_time: 0 },
      ],
    );
  });

  test('answers the monthly totals of the projected statistics', async () => {
    const { sqlite } = await bothAnswer('/admin/statistics/scripts-running/by-org/?month=2026-12');

    assert.deepEqual(sqlite.body, {
      month: '2026-12',
      count: 1,
      results: [{ org_id: 7, total_run_count: 3, total_run_time: 140 }],
    });
  });
  // Last: it deletes what the tests above read.
  test('deletes the same expired runs and statistics days, and answers the same afterwards', async () => {
    const retention = { logDays: 2, statisticsDays: 2, timeZone, batchSize: 2, batchPauseMs: 0 };
    const at = () => new Date('2026-12-04T13:03:07Z');
    const [fromMariadb, fromSqlite] = await Promise.all(
      [services.orm, sqliteOrm].map((orm) =>
        deleteExpiredRows({ ...retention, orm, logger: testLogger(), now: at }),
      ),
    );

    assert.deepEqual(fromSqlite, fromMariadb);
    assert.deepEqual(fromSqlite, { runLogsDeleted: 3, statisticsDeleted: 2 });
    for (const url of [
      '/admin/runs/',
      '/admin/statistics/by-day/?org_id=-1',
      '/admin/statistics/scripts-running/by-user/?month=2026-12',
      '/admin/statistics/scripts-running/by-base/?month=2026-11',
    ]) {
      const { mariadb, sqlite } = await bothAnswer(url);
      assert.deepEqual(sqlite, mariadb, url);
    }
  });
});
