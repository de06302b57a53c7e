import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { MikroORM } from '@mikro-orm/mariadb';
import { createTestDatabase, type TestDatabase } from '../../../test/support/mariadb.ts';
import { migrateDatabase, openDatabase } from '../src/db/orm.ts';
import { inTransaction } from '../src/db/sql.ts';
import { StatisticsBatch, type StatisticsTable } from '../src/projection/statisticsBatch.ts';

// The statistics of a batch are summed in memory and written once per row; the tables must
// be exactly what one statement per run gives (FLOAT rounding after each addition included),
// whatever the batch boundaries, also when the collation makes two spellings one row.

let summed: TestDatabase;
let reference: TestDatabase;
let orm: MikroORM;

before(async () => {
  summed = await createTestDatabase('stats_summed');
  reference = await createTestDatabase('stats_reference');
  for (const db of [reference, summed]) {
    const opened = await openDatabase({ ...db });
    await migrateDatabase(opened);
    if (db === summed) orm = opened;
    else await opened.close(true);
  }
});

after(async () => {
  await orm?.close(true);
  await summed?.drop();
  await reference?.drop();
});

interface Run {
  dtable: string;
  orgId: number;
  owner: string;
  day: string;
  seconds: number;
  updateAt: string;
}

/** What the projection adds for one run (as ProjectionBatch.countRun does). */
function adds(run: Run): [StatisticsTable, unknown[]][] {
  const month = `${run.day.slice(0, 7)}-01`;
  return [
    ['dtableDaily', [run.dtable, run.day, 1, run.seconds, run.updateAt]],
    ['dtableMonthly', [month, run.dtable, 1, run.seconds]],
    ['orgDaily', [run.orgId, run.day, 1, run.seconds, run.updateAt]],
    ['orgMonthly', [month, run.orgId, 1, run.seconds]],
    ['userDaily', [run.owner, run.orgId, run.day, 1, run.seconds, run.updateAt]],
    ['userMonthly', [month, run.owner, 1, run.seconds]],
  ];
}

/** One statement per run, in order: what the original and a naive projector write. */
const referenceStatements: Record<StatisticsTable, string> = {
  dtableDaily: `INSERT INTO dtable_run_script_statistics (dtable_uuid, run_date, total_run_count, total_run_time, update_at)
    VALUES (?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE total_run_count = total_run_count + VALUES(total_run_count),
    total_run_time = total_run_time + VALUES(total_run_time), update_at = VALUES(update_at)`,
  dtableMonthly: `INSERT INTO dtable_run_script_statistics_monthly (month, dtable_uuid, total_run_count, total_run_time)
    VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE total_run_count = total_run_count + VALUES(total_run_count),
    total_run_time = total_run_time + VALUES(total_run_time)`,
  orgDaily: `INSERT INTO org_run_script_statistics (org_id, run_date, total_run_count, total_run_time, update_at)
    VALUES (?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE total_run_count = total_run_count + VALUES(total_run_count),
    total_run_time = total_run_time + VALUES(total_run_time), update_at = VALUES(update_at)`,
  orgMonthly: `INSERT INTO org_run_script_statistics_monthly (month, org_id, total_run_count, total_run_time)
    VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE total_run_count = total_run_count + VALUES(total_run_count),
    total_run_time = total_run_time + VALUES(total_run_time)`,
  userDaily: `INSERT INTO user_run_script_statistics (username, org_id, run_date, total_run_count, total_run_time, update_at)
    VALUES (?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE total_run_count = total_run_count + VALUES(total_run_count),
    total_run_time = total_run_time + VALUES(total_run_time), org_id = VALUES(org_id), update_at = VALUES(update_at)`,
  userMonthly: `INSERT INTO user_run_script_statistics_monthly (month, username, total_run_count, total_run_time)
    VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE total_run_count = total_run_count + VALUES(total_run_count),
    total_run_time = total_run_time + VALUES(total_run_time)`,
};

/** Every statistics row, ids left out, the run time exactly as MariaDB holds it. */
async function contents(db: TestDatabase): Promise<Record<string, unknown[]>> {
  const tables: Record<string, string> = {
    dtable_run_script_statistics: 'dtable_uuid, run_date',
    org_run_script_statistics: 'org_id, run_date',
    user_run_script_statistics: 'username, run_date, org_id',
    dtable_run_script_statistics_monthly: 'month, dtable_uuid',
    org_run_script_statistics_monthly: 'month, org_id',
    user_run_script_statistics_monthly: 'month, username',
  };
  const all: Record<string, unknown[]> = {};
  for (const [table, columns] of Object.entries(tables)) {
    const monthly = table.endsWith('_monthly');
    const update = monthly ? '' : ', CAST(update_at AS CHAR) AS update_at';
    // Every digit: a DOUBLE as text, a FLOAT as the DOUBLE it is exactly.
    const time = `CAST(total_run_time AS ${monthly ? 'CHAR' : 'DOUBLE'})`;
    all[table] = await db.query(
      `SELECT ${columns}, total_run_count, ${time} AS total_run_time${update}
       FROM ${table} ORDER BY ${columns}`,
    );
  }
  return all;
}

/** A seeded sequence, so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
}

async function project(runs: Run[], batchSizes: () => number): Promise<StatisticsTable[]> {
  const oneByOne: StatisticsTable[] = [];
  for (let first = 0; first < runs.length; ) {
    const batch = runs.slice(first, first + batchSizes());
    first += batch.length;
    await inTransaction(orm, async (sql) => {
      const statistics = new StatisticsBatch();
      for (const run of batch)
        for (const [table, values] of adds(run)) statistics.add(table, values);
      oneByOne.push(...(await statistics.flush(sql)));
    });
  }
  for (const run of runs) {
    for (const [table, values] of adds(run))
      await reference.query(referenceStatements[table], values);
  }
  return oneByOne;
}

describe('the statistics of a projection batch', () => {
  test('equal one statement per run, FLOAT rounding included, across batch boundaries', async () => {
    const next = random(20261204);
    const runs: Run[] = Array.from({ length: 3000 }, (_unused, index) => ({
      dtable: `6a1f3c2e-9b7d-4e21-8f0a-${String(Math.floor(next() * 40)).padStart(12, '0')}`,
      orgId: Math.floor(next() * 6),
      owner: `user-${Math.floor(next() * 30)}@example.invalid`,
      day: `2026-11-${String(1 + Math.floor(next() * 3)).padStart(2, '0')}`,
      // Milliseconds as the projector computes them, and now and then a long or odd run.
      seconds:
        next() < 0.1 ? next() * 86_400 : Math.round(next() * 20_000) / 1000 + (index % 7) / 3,
      updateAt: `2026-11-03 10:${String(index % 60).padStart(2, '0')}:00.000000`,
    }));

    const oneByOne = await project(runs, () => 1 + Math.floor(next() * 700));

    assert.deepEqual(await contents(summed), await contents(reference));
    assert.deepEqual(oneByOne, [], 'every batch was summed');
  });

  test('a user spelled in two cases is one row, as the collation has it', async () => {
    const runs: Run[] = [
      'Mixed@Example.invalid',
      'mixed@example.invalid',
      'MIXED@example.invalid ',
    ].flatMap((owner, index) =>
      [1.1, 2.7].map((seconds) => ({
        dtable: '6a1f3c2e-9b7d-4e21-8f0a-0c5d2b7e9a11',
        orgId: 9,
        owner,
        day: '2026-11-04',
        seconds: seconds + index,
        updateAt: `2026-11-04 09:00:0${index}.000000`,
      })),
    );

    const oneByOne = await project(runs, () => 2);

    assert.deepEqual(await contents(summed), await contents(reference));
    assert.ok(
      oneByOne.includes('userDaily'),
      'the spelling that met another one was added run by run',
    );
    const [row] = await summed.query<{ total_run_count: number }>(
      "SELECT total_run_count FROM user_run_script_statistics WHERE username = 'mixed@example.invalid' AND run_date = '2026-11-04'",
    );
    assert.equal(row?.total_run_count, 6);
  });
});
