import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { encodeJson, type LiveOutputMessage, type Naming, subjects } from '@pipeline/events';
import { EventStreamReader } from '../../../../test/support/eventStream.ts';
import { createTestDatabase, type TestDatabase } from '../../../../test/support/mariadb.ts';
import { type NatsServer, startNatsServer } from '../../../../test/support/nats.ts';
import { type SeaTableStandin, startSeaTableStandin } from '../../../seatable-standin/src/index.ts';
import { loadConfig } from '../../src/config.ts';
import { RunEventLog } from '../../src/messaging/eventLog.ts';
import { type RunningScheduler, startScheduler } from '../../src/scheduler.ts';
import { append, runClaimed, runFinished, runRequested, runStarted } from '../support/events.ts';
import { testLogger } from '../support/harness.ts';

// Live output with two schedulers on one log (each subscribes itself), and the dashboard's
// statistics on MariaDB and on the SQLite first run. The starter's side is played here by
// publishing what a starter publishes.

let nats: NatsServer;
let standin: SeaTableStandin;
let db: TestDatabase;
let statisticsDb: TestDatabase;
let sqliteDir: string;
let connection: NatsConnection;
const schedulers: RunningScheduler[] = [];

function env(prefix: string, database: Record<string, string>): Record<string, string> {
  return {
    PYTHON_SCHEDULER_AUTH_TOKEN: standin.secret,
    SEATABLE_SERVER_URL: standin.url,
    NATS_URL: nats.url,
    PIPELINE_SUBJECT_PREFIX: prefix,
    SCHEDULER_PORT: '0',
    TIME_ZONE: 'Europe/Berlin',
    PYTHON_RUNNER_OUTPUT_LIMIT: '1000',
    ...database,
  };
}

async function scheduler(variables: Record<string, string>): Promise<RunningScheduler> {
  const started = await startScheduler(loadConfig(variables), testLogger());
  schedulers.push(started);
  return started;
}

async function get(target: RunningScheduler, path: string): Promise<Response> {
  return await fetch(`${target.url}${path}`, {
    headers: { Authorization: `Token ${standin.secret}`, Accept: 'text/event-stream' },
  });
}

function publishLive(naming: Naming, message: LiveOutputMessage): void {
  connection.publish(subjects.liveOutput(naming, message.runId), encodeJson(message));
}

/** A run that ran from `startedAt` for `seconds`, appended as claim, start and finish. */
async function ranFor(log: RunEventLog, orgId: number, seconds: number): Promise<number> {
  const runId = await append(log, runRequested({ orgId }));
  const startedAt = new Date(Date.now() - seconds * 1000 - 1000);
  await append(log, runClaimed(runId));
  await append(log, runStarted(runId, startedAt));
  await append(log, runFinished(runId, startedAt, new Date(startedAt.getTime() + seconds * 1000)));
  return runId;
}

async function untilFinished(target: RunningScheduler, runId: number): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const answer = await get(
      target,
      `/run-script/${runId}/?dtable_uuid=6a1f3c2e-9b7d-4e21-8f0a-0c5d2b7e9a11&script_name=t.py`,
    );
    // 404 until the projector has the run.
    if (answer.status === 200) {
      const { script } = (await answer.json()) as { script: { state: string } };
      if (script.state === 'finished') return;
    } else {
      await answer.arrayBuffer();
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`run ${runId} never finished`);
}

before(async () => {
  nats = await startNatsServer();
  standin = await startSeaTableStandin();
  db = await createTestDatabase('liveschedulers');
  statisticsDb = await createTestDatabase('dashstatistics');
  sqliteDir = await mkdtemp(join(tmpdir(), 'pipeline-dashboard-sqlite-'));
  connection = await connect({ servers: nats.url });
});

after(async () => {
  for (const running of schedulers) await running.stop();
  await connection?.close().catch(() => {});
  await standin?.stop();
  await db?.drop();
  await statisticsDb?.drop();
  await nats?.stop();
  if (sqliteDir) await rm(sqliteDir, { recursive: true, force: true });
});

const mariadb = (database = db) => ({
  DB_HOST: database.host,
  DB_PORT: String(database.port),
  DB_USER: database.user,
  DB_PASSWD: database.password,
  DATABASE_NAME: database.name,
});

describe('live output with several schedulers', () => {
  test('each scheduler streams the output, whichever one the operator asks', async () => {
    const variables = env('livetwo', mariadb());
    const first = await scheduler(variables);
    const second = await scheduler(variables);
    const log = await RunEventLog.open(connection, loadConfig(variables).naming);
    const naming = log.naming;
    const runId = await append(log, runRequested());
    await append(log, runClaimed(runId));
    await append(log, runStarted(runId, new Date()));

    publishLive(naming, { kind: 'output', runId, offset: 0, text: 'hello ' });
    await connection.flush();
    const streams: EventStreamReader[] = [];
    for (const target of [first, second]) {
      // Until the piece arrived at this scheduler, its stream starts empty: ask again.
      for (let attempt = 0; ; attempt++) {
        const stream = new EventStreamReader(
          await get(target, `/admin/runs/${runId}/output/live/`),
        );
        const event = await stream.next(300).catch(() => null);
        if (event) {
          assert.deepEqual(event, { event: 'output', data: { offset: 0, text: 'hello ' } });
          streams.push(stream);
          break;
        }
        await stream.cancel();
        assert.ok(attempt < 20, 'the piece never reached the scheduler');
      }
    }

    publishLive(naming, { kind: 'output', runId, offset: 6, text: 'world\n' });
    for (const stream of streams) {
      assert.deepEqual(await stream.next(), {
        event: 'output',
        data: { offset: 6, text: 'world\n' },
      });
    }
    await append(log, runFinished(runId, new Date(), new Date(), { output: 'hello world\n' }));
    publishLive(naming, { kind: 'end', runId, length: 12 });
    for (const stream of streams) {
      assert.deepEqual(await stream.next(), {
        event: 'end',
        data: { state: 'finished', success: true, return_code: 0, output: 'hello world\n' },
      });
      assert.equal(await stream.next(), null);
    }
  });
});

describe('a scheduler that stops', () => {
  test('ends its open live output streams instead of waiting for them', async () => {
    const variables = env('livestop', mariadb());
    const stopping = await scheduler(variables);
    const log = await RunEventLog.open(connection, loadConfig(variables).naming);
    const runId = await append(log, runRequested());
    await append(log, runClaimed(runId));
    await append(log, runStarted(runId, new Date()));
    const stream = new EventStreamReader(await get(stopping, `/admin/runs/${runId}/output/live/`));

    await stopping.stop();

    assert.equal(await stream.next(5000), null);
  });
});

describe('the dashboard statistics', () => {
  test('are the same on MariaDB and on the SQLite first run', async () => {
    const answers: unknown[] = [];
    for (const [prefix, database] of [
      ['dashmaria', mariadb(statisticsDb)],
      ['dashlite', { PIPELINE_SQLITE_FILE: join(sqliteDir, 'scheduler.sqlite') }],
    ] as const) {
      const variables = env(prefix, database);
      const target = await scheduler(variables);
      const log = await RunEventLog.open(connection, loadConfig(variables).naming);
      const runs = [await ranFor(log, 5, 2), await ranFor(log, 5, 1), await ranFor(log, 9, 4)];
      for (const runId of runs) await untilFinished(target, runId);

      const answer = await get(target, '/admin/dashboard/statistics/?days=3');
      assert.equal(answer.status, 200);
      answers.push(await answer.json());
    }

    const [onMariaDb, onSqlite] = answers as Array<{
      by_day: Array<{ runs: number; run_time: number }>;
      by_org: unknown;
      by_base: unknown;
    }>;
    assert.deepEqual(onSqlite, onMariaDb);
    assert.equal(onMariaDb?.by_day.length, 3);
    assert.deepEqual(onMariaDb?.by_day.at(-1), {
      date: new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Berlin' }).format(new Date()),
      runs: 3,
      run_time: 7,
    });
    assert.deepEqual(onMariaDb?.by_org, [
      { org_id: 5, runs: 2, run_time: 3 },
      { org_id: 9, runs: 1, run_time: 4 },
    ]);
    assert.deepEqual(onMariaDb?.by_base, [
      { base_uuid: '6a1f3c2e-9b7d-4e21-8f0a-0c5d2b7e9a11', runs: 3, run_time: 7 },
    ]);
  });
});
