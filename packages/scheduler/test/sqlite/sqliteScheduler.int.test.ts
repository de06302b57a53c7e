import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { outputTexts } from '@pipeline/events';
import { createTestDatabase } from '../../../../test/support/mariadb.ts';
import { type NatsServer, startNatsServer } from '../../../../test/support/nats.ts';
import { type SeaTableStandin, startSeaTableStandin } from '../../../seatable-standin/src/index.ts';
import { rebuildReadModel } from '../../src/audit/rebuild.ts';
import { loadConfig } from '../../src/config.ts';
import { openDatabase } from '../../src/db/orm.ts';
import { lockSqliteFile } from '../../src/db/sqliteFileLock.ts';
import { RunEventLog } from '../../src/messaging/eventLog.ts';
import { type RunningScheduler, startScheduler } from '../../src/scheduler.ts';
import { append, runClaimed, runFinished, runStarted } from '../support/events.ts';
import { baseUuid, standardSubmission, testLogger } from '../support/harness.ts';

// A whole scheduler on a SQLite file, with its own NATS and no database server at all.
let nats: NatsServer;
let standin: SeaTableStandin;
let connection: NatsConnection;
let eventLog: RunEventLog;
let dir: string;
let sqliteFile: string;
let scheduler: RunningScheduler;

before(async () => {
  nats = await startNatsServer();
  standin = await startSeaTableStandin();
  dir = await mkdtemp(join(tmpdir(), 'pipeline-sqlite-scheduler-'));
  sqliteFile = join(dir, 'first-run', 'scheduler.sqlite');
  const config = loadConfig({
    PYTHON_SCHEDULER_AUTH_TOKEN: standin.secret,
    SEATABLE_SERVER_URL: standin.url,
    NATS_URL: nats.url,
    PIPELINE_SUBJECT_PREFIX: 'sqlitefirst',
    PIPELINE_SQLITE_FILE: sqliteFile,
    TIME_ZONE: 'Europe/Berlin',
  });
  config.http.port = 0;
  scheduler = await startScheduler(config, testLogger());
  connection = await connect({ servers: nats.url });
  eventLog = await RunEventLog.open(connection, config.naming);
});

after(async () => {
  await scheduler?.stop();
  await connection?.close().catch(() => {});
  await standin?.stop();
  await nats?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function api(path: string, body?: unknown): Promise<Response> {
  return await fetch(`${scheduler.url}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Token ${standin.secret}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function finishedScript(runId: number) {
  for (let attempt = 0; attempt < 100; attempt++) {
    const response = await api(`/run-script/${runId}/?dtable_uuid=${baseUuid}&script_name=t.py`);
    const { script } = (await response.json()) as { script: Record<string, unknown> };
    if (script.state === 'finished') return script;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`run ${runId} never finished`);
}

describe('scheduler on a SQLite file', () => {
  test('creates the file and its folder', async () => {
    assert.ok((await stat(sqliteFile)).size > 0);
  });

  test('refuses a second scheduler on the same file in one line naming the setting', async () => {
    const second = loadConfig({
      PYTHON_SCHEDULER_AUTH_TOKEN: standin.secret,
      SEATABLE_SERVER_URL: standin.url,
      NATS_URL: nats.url,
      PIPELINE_SUBJECT_PREFIX: 'sqlitefirst',
      PIPELINE_SQLITE_FILE: sqliteFile,
    });
    second.http.port = 0;

    await assert.rejects(startScheduler(second, testLogger()), {
      name: 'StartupError',
      message: `PIPELINE_SQLITE_FILE: ${sqliteFile} is in use by another scheduler (${hostname()} ${process.pid}); several schedulers need MariaDB (DB_HOST)`,
    });
  });

  test('refuses a second scheduler on the same log, whatever its read model', async () => {
    const database = await createTestDatabase('sqlite_second');
    after(() => database.drop());
    const common = {
      PYTHON_SCHEDULER_AUTH_TOKEN: standin.secret,
      SEATABLE_SERVER_URL: standin.url,
      NATS_URL: nats.url,
      PIPELINE_SUBJECT_PREFIX: 'sqlitefirst',
    };
    const withMariadb = loadConfig({
      ...common,
      DB_HOST: database.host,
      DB_PORT: String(database.port),
      DB_ROOT_PASSWD: database.password,
      DATABASE_NAME: database.name,
    });
    const withOwnFile = loadConfig({
      ...common,
      PIPELINE_SQLITE_FILE: join(dir, 'second', 'scheduler.sqlite'),
    });
    const firstScheduler = `${hostname()} ${process.pid}`;

    for (const config of [withMariadb, withOwnFile]) config.http.port = 0;
    await assert.rejects(startScheduler(withMariadb, testLogger()), {
      name: 'StartupError',
      message: `DB_HOST: the scheduler ${firstScheduler} of this log keeps its read model in a SQLite file (PIPELINE_SQLITE_FILE); several schedulers need the same MariaDB`,
    });
    await assert.rejects(startScheduler(withOwnFile, testLogger()), {
      name: 'StartupError',
      message: `PIPELINE_SQLITE_FILE: another scheduler (${firstScheduler}) serves this log; several schedulers need MariaDB (DB_HOST)`,
    });
  });

  test('leaves rebuild to MariaDB, saying what to do instead', async () => {
    const config = loadConfig({
      PYTHON_SCHEDULER_AUTH_TOKEN: standin.secret,
      SEATABLE_SERVER_URL: standin.url,
      NATS_URL: nats.url,
      PIPELINE_SQLITE_FILE: sqliteFile,
    });

    // As `pipeline rebuild` does: the read model opened beside the running scheduler.
    const orm = await openDatabase(config.database);
    const refused = rebuildReadModel(
      {
        orm,
        database: config.database,
        eventLog,
        timeZone: config.timeZone,
        retention: config.retention,
        logger: testLogger(),
      },
      { swap: false, force: false },
    ).finally(() => orm.close(true));

    await assert.rejects(refused, {
      message:
        'rebuild needs MariaDB (DB_HOST); with PIPELINE_SQLITE_FILE, stop the scheduler, delete the file and start it again',
    });
  });

  test('admits runs up to the monthly limit and refuses the rest with the contract text', async () => {
    const body = standardSubmission({ owner: 'quota@example.invalid', scripts_running_limit: 2 });
    const answers = await Promise.all(Array.from({ length: 5 }, () => api('/run-script/', body)));
    const texts = await Promise.all(answers.map((answer) => answer.text()));

    assert.deepEqual(answers.map((answer) => answer.status).sort(), [200, 200, 400, 400, 400]);
    assert.deepEqual(
      texts.filter((_, index) => answers[index]?.status === 400),
      [outputTexts.quotaExceeded, outputTexts.quotaExceeded, outputTexts.quotaExceeded],
    );
  });

  test('projects a run to its end and counts it in the statistics of the contract', async () => {
    const submitted = await api(
      '/run-script/',
      standardSubmission({ owner: 'first-run@example.invalid' }),
    );
    assert.equal(submitted.status, 200);
    const { script_id: runId } = (await submitted.json()) as { script_id: number };
    const startedAt = new Date(Date.now() - 3000);
    await append(eventLog, runClaimed(runId, 'sqlite-starter'));
    await append(eventLog, runStarted(runId, startedAt, 'sqlite-starter'));
    await append(
      eventLog,
      runFinished(runId, startedAt, new Date(startedAt.getTime() + 2600), { output: 'hi\n' }),
    );

    const script = await finishedScript(runId);
    assert.deepEqual([script.success, script.return_code, script.output], [true, 0, 'hi\n']);
    const byBase = await api('/admin/statistics/by-base/?org_id=-1');
    assert.deepEqual(await byBase.json(), {
      results: [
        {
          base_uuid: baseUuid,
          number_of_runs: 1,
          total_run_time: 3,
          triggered_manually: 1,
          triggered_by_automation_rule: 0,
          successful_runs: 1,
          unsuccessful_runs: 0,
        },
      ],
      total_count: 1,
    });
    const count = await api('/scripts-running-count/?username=first-run@example.invalid');
    assert.deepEqual(await count.json(), { count: 1 });
  });
});

describe('the SQLite file lock', () => {
  test('takes over the lock of a scheduler that is gone, and gives it back', async () => {
    const file = join(dir, 'stale', 'read.sqlite');
    const gone = spawnSync(process.execPath, ['-e', '0']).pid;
    await mkdir(join(dir, 'stale'));
    await writeFile(`${file}.lock`, `${hostname()} ${gone}`);

    const release = await lockSqliteFile(file);
    assert.equal(await readFile(`${file}.lock`, 'utf8'), `${hostname()} ${process.pid}`);
    await release();
    await assert.rejects(stat(`${file}.lock`), { code: 'ENOENT' });
  });

  test('names the setting when the file cannot be written', async () => {
    const notAFolder = join(dir, 'plain-file');
    await writeFile(notAFolder, 'not a folder');

    await assert.rejects(lockSqliteFile(join(notAFolder, 'read.sqlite')), {
      name: 'StartupError',
      message: new RegExp(
        `^PIPELINE_SQLITE_FILE: cannot write next to ${notAFolder}/read\\.sqlite: `,
      ),
    });
  });
});
