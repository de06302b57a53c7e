import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TestDatabase } from '../../../../test/support/mariadb.ts';
import { baseA, bodyOf, type ReadFixture, startReadFixture } from './readFixture.ts';

const undashedUpper = baseA.replaceAll('-', '').toUpperCase();
const dashedUpper = baseA.toUpperCase();

/** An original installation from before `state` and `created_at`, with its base ids as sent. */
async function originalInstallation(db: TestDatabase): Promise<void> {
  await db.query(`CREATE TABLE script_log (
    id int(11) NOT NULL AUTO_INCREMENT, dtable_uuid varchar(36) NOT NULL, owner varchar(255) DEFAULT NULL,
    org_id int(11) DEFAULT NULL, script_name varchar(255) NOT NULL, context_data longtext DEFAULT NULL,
    started_at datetime(6) NOT NULL, finished_at datetime(6) DEFAULT NULL, success tinyint(1) DEFAULT NULL,
    return_code int(11) DEFAULT NULL, output longtext DEFAULT NULL, operate_from varchar(50) DEFAULT NULL,
    PRIMARY KEY (id), KEY dtable_uuid_script_name_l0j7h5f2_union_key (dtable_uuid, script_name)
  ) DEFAULT CHARSET=utf8`);
  await db.query(`CREATE TABLE dtable_run_script_statistics (
    id int(11) NOT NULL AUTO_INCREMENT, dtable_uuid varchar(36) NOT NULL, run_date date NOT NULL,
    total_run_count int(11) DEFAULT 0, total_run_time float DEFAULT 0, update_at datetime(6) DEFAULT NULL,
    PRIMARY KEY (id), UNIQUE KEY dtable_uuid_run_date_k2n9j3p1_uniq_key (dtable_uuid, run_date)
  ) DEFAULT CHARSET=utf8`);
  await db.query(
    `INSERT INTO script_log (id, dtable_uuid, owner, org_id, script_name, started_at, finished_at, success, operate_from)
     VALUES (1, ?, 'u@example.invalid', 42, 't.py', '2026-12-01 10:00:00', '2026-12-01 10:00:04', 1, 'manualy'),
            (2, ?, 'u@example.invalid', 42, 't.py', '2026-12-02 10:00:00', '2026-12-02 10:00:06', 1, 'manualy')`,
    [undashedUpper, baseA],
  );
  await db.query(
    `INSERT INTO dtable_run_script_statistics (dtable_uuid, run_date, total_run_count, total_run_time)
     VALUES (?, '2026-12-01', 1, 4), (?, '2026-12-01', 2, 5), (?, '2026-12-02', 1, 6)`,
    [undashedUpper, baseA, dashedUpper],
  );
}

let fixture: ReadFixture;

before(async () => {
  fixture = await startReadFixture('legacy_uuids', { beforeMigrations: originalInstallation });
});

after(async () => {
  await fixture.close();
});

test('lists the runs of an adopted installation under every form of their base (BC-11)', async () => {
  for (const form of [baseA, undashedUpper, baseA.replaceAll('-', '')]) {
    const body = bodyOf<{ count: number; task_logs: { dtable_uuid: string }[] }>(
      await fixture.get(`/tasks/${form}/t.py/logs/`),
    );
    assert.equal(body.count, 2, form);
    assert.deepEqual(
      body.task_logs.map((run) => run.dtable_uuid),
      [baseA, baseA],
    );
  }
  const listed = bodyOf<{ total_count: number }>(
    await fixture.get(`/admin/runs/?base_uuid=${undashedUpper}`),
  );
  assert.equal(listed.total_count, 2);
});

test('shows an adopted base once in the statistics, its forms added up', async () => {
  const byBase = bodyOf(await fixture.get('/admin/statistics/by-base/?org_id=42'));
  const monthly = bodyOf(
    await fixture.get('/admin/statistics/scripts-running/by-base/?month=2026-12'),
  );

  assert.deepEqual(byBase, {
    results: [
      {
        base_uuid: baseA,
        number_of_runs: 2,
        total_run_time: 10,
        triggered_manually: 2,
        triggered_by_automation_rule: 0,
        successful_runs: 2,
        unsuccessful_runs: 0,
      },
    ],
    total_count: 1,
  });
  assert.deepEqual(monthly, {
    month: '2026-12',
    count: 1,
    results: [{ base_uuid: baseA, total_run_count: 4, total_run_time: 15 }],
  });
  const days = await fixture.db.query<{ dtable_uuid: string; run_date: unknown }>(
    'SELECT dtable_uuid FROM dtable_run_script_statistics ORDER BY run_date',
  );
  assert.deepEqual(
    days.map((day) => day.dtable_uuid),
    [baseA, baseA],
  );
});
