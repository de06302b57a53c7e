import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { MikroORM } from '@mikro-orm/mariadb';
import { pino } from 'pino';
import { createTestDatabase, type TestDatabase } from '../../../../test/support/mariadb.ts';
import { migrateDatabase, openDatabase } from '../../src/db/orm.ts';
import { deleteExpiredRows, startRetention } from '../../src/retention/retention.ts';
import { baseA, seedRuns, seedStatistics } from './readFixture.ts';

let db: TestDatabase;
let orm: MikroORM;
const silent = pino({ level: 'silent' });
/** 4 December 2026, 00:30 in Berlin (still 3 December in UTC). */
const now = new Date('2026-12-03T23:30:00Z');

before(async () => {
  db = await createTestDatabase('retention');
  orm = await openDatabase({ ...db, name: db.name, poolSize: 2 });
  await migrateDatabase(orm);
});

after(async () => {
  await orm.close();
  await db.drop();
});

beforeEach(async () => {
  for (const table of [
    'script_log',
    'run_detail',
    'run_output_chunk',
    'user_run_script_statistics',
    'org_run_script_statistics',
    'dtable_run_script_statistics',
    'user_run_script_statistics_monthly',
    'org_run_script_statistics_monthly',
    'dtable_run_script_statistics_monthly',
  ]) {
    await db.query(`DELETE FROM ${table}`);
  }
});

const idsIn = async (table: string, column = 'id') =>
  (await db.query<{ id: number }>(`SELECT ${column} AS id FROM ${table} ORDER BY ${column}`)).map(
    (row) => Number(row.id),
  );

describe('deleteExpiredRows', () => {
  test('deletes runs requested before the log cutoff, with their details and output pieces', async () => {
    await seedRuns(db, [
      { id: 1, created_at: '2026-11-03 23:29:59' },
      { id: 2, created_at: '2026-11-03 23:30:00' },
      { id: 3, created_at: '2026-12-03 12:00:00' },
      // Rows of the original from before `created_at` are aged by their start.
      { id: 4, created_at: null, started_at: '2026-10-01 10:00:00' },
      { id: 5, created_at: null, started_at: '2026-11-20 10:00:00' },
    ]);
    for (const runId of [1, 2, 4]) {
      await db.query('INSERT INTO run_detail (run_id) VALUES (?)', [runId]);
      await db.query('INSERT INTO run_output_chunk (run_id, chunk_index, text) VALUES (?, 0, ?)', [
        runId,
        'piece',
      ]);
    }

    const pass = await deleteExpiredRows({
      orm,
      logger: silent,
      logDays: 30,
      statisticsDays: 90,
      now: () => now,
    });

    assert.equal(pass.runLogsDeleted, 2);
    assert.deepEqual(await idsIn('script_log'), [2, 3, 5]);
    assert.deepEqual(await idsIn('run_detail', 'run_id'), [2]);
    assert.deepEqual(await idsIn('run_output_chunk', 'run_id'), [2]);
  });

  test('deletes statistics days before the cutoff day in the configured zone', async () => {
    // In Berlin it is already 4 December: 90 days back is 5 September, the first day kept.
    await seedStatistics({ db, orm }, 'user_run_script_statistics', [
      { owner: 'a@example.invalid', day: '2026-09-04', count: 1, time: 1 },
      { owner: 'a@example.invalid', day: '2026-09-05', count: 1, time: 1 },
    ]);
    await seedStatistics({ db, orm }, 'org_run_script_statistics', [
      { owner: 42, day: '2026-09-04', count: 1, time: 1 },
      { owner: 42, day: '2026-12-04', count: 1, time: 1 },
    ]);
    await seedStatistics({ db, orm }, 'dtable_run_script_statistics', [
      { owner: baseA, day: '2026-01-01', count: 1, time: 1 },
      { owner: baseA, day: '2026-09-05', count: 1, time: 1 },
    ]);

    const pass = await deleteExpiredRows({
      orm,
      logger: silent,
      logDays: 30,
      statisticsDays: 90,
      now: () => now,
      timeZone: 'Europe/Berlin',
    });

    assert.equal(pass.statisticsDeleted, 3);
    const keptDays = await db.query<{ day: string }>(
      `SELECT DATE_FORMAT(run_date, '%Y-%m-%d') AS day FROM user_run_script_statistics
       UNION ALL SELECT DATE_FORMAT(run_date, '%Y-%m-%d') FROM org_run_script_statistics
       UNION ALL SELECT DATE_FORMAT(run_date, '%Y-%m-%d') FROM dtable_run_script_statistics`,
    );
    assert.deepEqual(keptDays.map((row) => row.day).sort(), [
      '2026-09-05',
      '2026-09-05',
      '2026-12-04',
    ]);
  });

  test('takes deleted days off the monthly totals and drops months left empty', async () => {
    await seedStatistics({ db, orm }, 'user_run_script_statistics', [
      { owner: 'a@example.invalid', day: '2026-09-04', count: 2, time: 3.5 },
      { owner: 'a@example.invalid', day: '2026-09-05', count: 1, time: 1.25 },
    ]);
    await seedStatistics({ db, orm }, 'org_run_script_statistics', [
      { owner: 42, day: '2026-08-31', count: 4, time: 4 },
      { owner: 42, day: '2026-12-04', count: 1, time: 1 },
    ]);

    await deleteExpiredRows({
      orm,
      logger: silent,
      logDays: 30,
      statisticsDays: 90,
      now: () => now,
      timeZone: 'Europe/Berlin',
    });

    const months = await db.query<{ owner: string; month: string; runs: number; run_time: number }>(
      `SELECT username AS owner, DATE_FORMAT(month, '%Y-%m') AS month, total_run_count AS runs, total_run_time AS run_time
       FROM user_run_script_statistics_monthly
       UNION ALL SELECT org_id, DATE_FORMAT(month, '%Y-%m'), total_run_count, total_run_time
       FROM org_run_script_statistics_monthly ORDER BY month`,
    );
    assert.deepEqual(
      months.map((row) => [String(row.owner), row.month, row.runs, row.run_time]),
      [
        ['a@example.invalid', '2026-09', 1, 1.25],
        ['42', '2026-12', 1, 1],
      ],
    );
  });

  test('works through more expired rows than one batch holds', async () => {
    const values = Array.from(
      { length: 2345 },
      (_, index) => `(${index + 1}, '${baseA}', 't.py', '2026-01-01 00:00:00', 'finished')`,
    );
    await db.query(
      `INSERT INTO script_log (id, dtable_uuid, script_name, created_at, state) VALUES ${values.join(',')}`,
    );
    await seedRuns(db, [{ id: 9999, created_at: '2026-12-01 00:00:00' }]);

    const pass = await deleteExpiredRows({
      orm,
      logger: silent,
      logDays: 30,
      statisticsDays: 90,
      now: () => now,
      batchSize: 500,
      batchPauseMs: 0,
    });

    assert.equal(pass.runLogsDeleted, 2345);
    assert.deepEqual(await idsIn('script_log'), [9999]);
  });

  test('keeps everything when the keeping times are 0', async () => {
    await seedRuns(db, [{ id: 1, created_at: '2020-01-01 00:00:00' }]);
    await seedStatistics({ db, orm }, 'org_run_script_statistics', [
      { owner: 42, day: '2020-01-01', count: 1, time: 1 },
    ]);

    const pass = await deleteExpiredRows({
      orm,
      logger: silent,
      logDays: 0,
      statisticsDays: 0,
      now: () => now,
    });

    assert.deepEqual(pass, { runLogsDeleted: 0, statisticsDeleted: 0 });
    assert.deepEqual(await idsIn('script_log'), [1]);
  });
});

describe('startRetention', () => {
  test('runs a pass at start-up, logs it, and stops cleanly', async () => {
    await seedRuns(db, [
      { id: 1, created_at: '2026-01-01 00:00:00' },
      { id: 2, created_at: '2026-12-01 00:00:00' },
    ]);
    const { promise: passLogged, resolve } = Promise.withResolvers<Record<string, unknown>>();
    const sink = new Writable({
      write(chunk, _encoding, done) {
        const line = JSON.parse(String(chunk));
        if (line.msg === 'retention pass finished') resolve(line);
        done();
      },
    });

    const retention = startRetention({
      orm,
      logger: pino(sink),
      logDays: 30,
      statisticsDays: 90,
      now: () => now,
    });
    const finished = await passLogged;
    await retention.stop();

    assert.deepEqual(await idsIn('script_log'), [2]);
    assert.equal(finished.runLogsDeleted, 1);
    assert.equal(finished.component, 'retention');
  });

  test('logs a failed pass as an error and tries again on schedule', async () => {
    const empty = await createTestDatabase('retention_empty');
    const unmigrated = await openDatabase({ ...empty, name: empty.name, poolSize: 1 });
    const failures: Record<string, unknown>[] = [];
    const { promise: twoFailures, resolve } = Promise.withResolvers<void>();
    const sink = new Writable({
      write(chunk, _encoding, done) {
        const line = JSON.parse(String(chunk));
        if (line.msg === 'retention pass failed') failures.push(line);
        if (failures.length === 2) resolve();
        done();
      },
    });

    const retention = startRetention({
      orm: unmigrated,
      logger: pino(sink),
      logDays: 30,
      statisticsDays: 90,
      now: () => now,
      intervalMs: 10,
    });
    await twoFailures;
    await retention.stop();
    await unmigrated.close();
    await empty.drop();

    assert.equal(failures[0]?.level, 50);
    const failure = failures[0] as { err?: { message?: string } };
    assert.match(String(failure.err?.message), /script_log/);
  });
});
