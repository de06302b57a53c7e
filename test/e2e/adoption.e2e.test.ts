import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { runPipelineCommand } from '../../packages/scheduler/src/cli/commands.ts';
import { baseUuid, type Pipeline, startPipeline } from '../support/pipeline.ts';

// Switching over (issue #3): pointed at the database of an original installation, the
// pipeline keeps the old runs readable through the same endpoints and gives new runs ids
// above the highest old one. It writes the old runs and statistics into the log once
// (issue #5), so a rebuild from the log keeps them.

let pipeline: Pipeline;
const oldBase = '0b7c8d9e-1f2a-4b3c-8d4e-5f6a7b8c9d0e';

/** The original scheduler's tables as its installer created them (utf8, not utf8mb4). */
const originalSchema = [
  `CREATE TABLE script_log (
    id int(11) NOT NULL AUTO_INCREMENT, dtable_uuid varchar(36) NOT NULL,
    owner varchar(255) DEFAULT NULL, org_id int(11) DEFAULT NULL,
    script_name varchar(255) NOT NULL, context_data longtext DEFAULT NULL,
    started_at datetime(6) NOT NULL, finished_at datetime(6) DEFAULT NULL,
    success tinyint(1) DEFAULT NULL, return_code int(11) DEFAULT NULL,
    output longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci DEFAULT NULL,
    operate_from varchar(50) DEFAULT NULL, state varchar(10), created_at datetime(6),
    PRIMARY KEY (id)) ENGINE=InnoDB DEFAULT CHARSET=utf8`,
  `CREATE TABLE user_run_script_statistics (
    id int(11) NOT NULL AUTO_INCREMENT, username varchar(255) NOT NULL, org_id int(11) NOT NULL,
    run_date date NOT NULL, total_run_count int(11) DEFAULT 0, total_run_time float DEFAULT 0,
    update_at datetime(6) DEFAULT NULL, PRIMARY KEY (id),
    UNIQUE KEY username_run_date_n3x0p2i8_uniq_key (username, run_date)) ENGINE=InnoDB DEFAULT CHARSET=utf8`,
  `CREATE TABLE org_run_script_statistics (
    id int(11) NOT NULL AUTO_INCREMENT, org_id int(11) NOT NULL, run_date date NOT NULL,
    total_run_count int(11) DEFAULT 0, total_run_time float DEFAULT 0,
    update_at datetime(6) DEFAULT NULL, PRIMARY KEY (id),
    UNIQUE KEY org_id_run_date_a0g6y5r4_uniq_key (org_id, run_date)) ENGINE=InnoDB DEFAULT CHARSET=utf8`,
  `CREATE TABLE dtable_run_script_statistics (
    id int(11) NOT NULL AUTO_INCREMENT, dtable_uuid varchar(36) NOT NULL, run_date date NOT NULL,
    total_run_count int(11) DEFAULT 0, total_run_time float DEFAULT 0,
    update_at datetime(6) DEFAULT NULL, PRIMARY KEY (id),
    UNIQUE KEY dtable_uuid_run_date_k2n9j3p1_uniq_key (dtable_uuid, run_date)) ENGINE=InnoDB DEFAULT CHARSET=utf8`,
];

before(async () => {
  pipeline = await startPipeline({
    label: 'adoption',
    async prepareDatabase(db) {
      for (const statement of originalSchema) await db.query(statement);
      // The original stored what clients sent: here the 32-character form of the base.
      await db.query(
        `INSERT INTO script_log (id, dtable_uuid, owner, org_id, script_name, context_data,
           started_at, finished_at, success, return_code, output, operate_from, state, created_at)
         VALUES (4711, ?, 'old@example.invalid', 42, 'legacy.py', '{"row": 1}',
           '2026-12-01 09:00:00', '2026-12-01 09:00:03', 1, 0, 'old output\n', 'manualy',
           'finished', '2026-12-01 09:00:00')`,
        [oldBase.replace(/-/g, '')],
      );
      const month = new Date().toISOString().slice(0, 7);
      await db.query(
        `INSERT INTO user_run_script_statistics (username, org_id, run_date, total_run_count, total_run_time)
         VALUES ('old@example.invalid', 42, ?, 7, 21)`,
        [`${month}-01`],
      );
    },
  });
});

after(async () => {
  await pipeline?.stop();
});

describe('adopting an original installation', () => {
  test('keeps an old run readable through the same endpoints', async () => {
    const single = await pipeline.request(
      `/run-script/4711/?dtable_uuid=${oldBase}&script_name=legacy.py`,
    );
    const logs = await pipeline.request(`/tasks/${oldBase}/legacy.py/logs/`);

    assert.equal(single.status, 200);
    const { script } = (await single.json()) as { script: Record<string, unknown> };
    assert.equal(script.output, 'old output\n');
    assert.deepEqual(script.context_data, { row: 1 });
    assert.equal(script.dtable_uuid, oldBase);
    const listed = (await logs.json()) as { count: number };
    assert.equal(listed.count, 1);
  });

  test('counts the old statistics in the running count', async () => {
    const response = await pipeline.request('/scripts-running-count/?username=old@example.invalid');
    assert.deepEqual(await response.json(), { count: 7 });
  });

  test('gives a new run an id above the highest old one, and runs it', async () => {
    const submitted = await pipeline.submit({ script: 'print("new 😀")\n' });
    assert.equal(submitted.status, 200, submitted.text);
    assert.ok(submitted.id > 4711, `new run id ${submitted.id}`);

    const result = await pipeline.waitFinished(submitted.id, submitted.scriptName);
    assert.equal(result.output, 'new 😀\n');
    assert.equal(result.dtable_uuid, baseUuid);
  });
});

/** Runs the `pipeline` command with the scheduler's environment. */
async function pipelineCommand(...argv: string[]) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: string[] = [];
  const err: string[] = [];
  stdout.on('data', (chunk: Buffer) => out.push(chunk.toString()));
  stderr.on('data', (chunk: Buffer) => err.push(chunk.toString()));
  const code = await runPipelineCommand(argv, { env: pipeline.env, stdout, stderr });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

describe('the adopted history in the log', () => {
  test('holds each old run once, as RunImported, with what its row held', async () => {
    const printed = await pipelineCommand('events', '--run', '4711');
    assert.equal(printed.code, 0, printed.stderr);
    const events = printed.stdout
      .trim()
      .split('\n')
      .map(
        (line) => JSON.parse(line) as { type: string; event: { data: Record<string, unknown> } },
      );
    assert.deepEqual(
      events.map((logged) => logged.type),
      ['RunImported'],
    );
    assert.equal(events[0]?.event.data.output, 'old output\n');
    assert.equal(events[0]?.event.data.dtableUuid, oldBase);
  });

  test('rebuild from the log gives identical tables, old runs and statistics included', async () => {
    const rebuilt = await pipelineCommand('rebuild');
    assert.equal(rebuilt.code, 0, rebuilt.stderr + rebuilt.stdout);
    assert.match(rebuilt.stdout, /^identical: /m);
    assert.match(rebuilt.stdout, /^swapped: /m);

    const single = await pipeline.request(
      `/run-script/4711/?dtable_uuid=${oldBase}&script_name=legacy.py`,
    );
    const { script } = (await single.json()) as { script: Record<string, unknown> };
    assert.equal(script.output, 'old output\n');
    const running = await pipeline.request('/scripts-running-count/?username=old@example.invalid');
    assert.deepEqual(await running.json(), { count: 7 });
  });
});
