import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type ClaimReply,
  claimReplySchema,
  decodeWith,
  encodeEvent,
  encodeJson,
  namingFor,
  subjects,
} from '@pipeline/events';
import { freePort } from '../../../test/support/nats.ts';
import { loadConfig } from '../src/config.ts';
import { ensureEventLog } from '../src/messaging/streamSetup.ts';
import { type RunningScheduler, startScheduler } from '../src/scheduler.ts';
import { append, runFinished, runRequested, runStarted } from './support/events.ts';
import {
  baseUuid,
  type Services,
  standardSubmission,
  startServices,
  testLogger,
} from './support/harness.ts';

let services: Services;
let scheduler: RunningScheduler;
let token: string;

before(async () => {
  services = await startServices('scheduler');
  token = services.standin.secret;
  services.standin.setScript({
    dtableUuid: baseUuid,
    scriptName: 'hello.py',
    source: 'print("hello")\n',
  });
  const config = loadConfig({
    PYTHON_SCHEDULER_AUTH_TOKEN: token,
    SEATABLE_SERVER_URL: services.standin.url,
    NATS_URL: services.nats.url,
    PIPELINE_SUBJECT_PREFIX: services.naming.prefix,
    DB_HOST: services.db.host,
    DB_PORT: String(services.db.port),
    DB_ROOT_PASSWD: services.db.password,
    DATABASE_NAME: services.db.name,
    TIME_ZONE: 'Europe/Berlin',
    PYTHON_PROCESS_TIMEOUT: '30',
  });
  config.http.port = 0;
  scheduler = await startScheduler(config, testLogger());
});

after(async () => {
  await scheduler?.stop();
  await services?.close();
});

async function api(method: string, path: string, body?: unknown): Promise<Response> {
  return await fetch(`${scheduler.url}${path}`, {
    method,
    headers: { authorization: `Token ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    redirect: 'manual',
  });
}

async function claim(runId: number): Promise<ClaimReply> {
  const answer = await services.connection.request(
    subjects.claims(services.naming),
    encodeJson({ runId, starterId: 'smoke-starter', host: 'smoke.host', deliveryCount: 1 }),
    { timeout: 10_000 },
  );
  const decoded = decodeWith(claimReplySchema, answer.data);
  assert.ok(decoded.ok);
  return decoded.value;
}

async function pollUntil(runId: number, state: string) {
  for (let attempt = 0; attempt < 100; attempt++) {
    const response = await api(
      'GET',
      `/run-script/${runId}/?dtable_uuid=${baseUuid}&script_name=hello.py`,
    );
    const { script } = (await response.json()) as {
      script: { state: string } & Record<string, unknown>;
    };
    if (script.state === state) return script;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`run ${runId} never reached ${state}`);
}

describe('scheduler on a real socket', () => {
  test('answers ping and redirects on the socket', async () => {
    const ping = await fetch(`${scheduler.url}/ping/`);
    assert.equal(ping.status, 200);
    assert.equal(await ping.text(), 'Pong');
    const redirected = await api('GET', '/run-script/1?dtable_uuid=x&script_name=y');
    assert.equal(redirected.status, 308);
    assert.equal(redirected.headers.get('location'), '/run-script/1/?dtable_uuid=x&script_name=y');
  });

  test('takes a run from submission through claim, start and finish to the statistics', async () => {
    const submitted = await api(
      'POST',
      '/run-script/',
      standardSubmission({ script_name: 'hello.py', owner: 'smoke@example.invalid' }),
    );
    assert.equal(submitted.status, 200);
    const { script_id: runId } = (await submitted.json()) as { script_id: number };

    const reply = await claim(runId);
    assert.equal(reply.decision, 'run');
    assert.ok(reply.decision === 'run');
    assert.equal(reply.timeoutSeconds, 30);
    const source = await (await fetch(reply.scriptUrl)).text();
    assert.equal(source, 'print("hello")\n');

    const startedAt = new Date(Date.now() - 2000);
    await append(services.eventLog, runStarted(runId, startedAt, 'smoke-starter'));
    await pollUntil(runId, 'running');
    await append(
      services.eventLog,
      runFinished(runId, startedAt, new Date(), { output: 'hello\n', starterId: 'smoke-starter' }),
    );
    const script = await pollUntil(runId, 'finished');
    assert.deepEqual([script.success, script.return_code, script.output], [true, 0, 'hello\n']);
    const [stats] = await services.db.query<{ runs: number }>(
      "SELECT SUM(total_run_count) AS runs FROM user_run_script_statistics WHERE username = 'smoke@example.invalid'",
    );
    assert.equal(Number(stats?.runs), 1);
  });
});

describe('event log set-up', () => {
  test('starts a new log above the run ids of an adopted read model, on NATS 2.9 too', async () => {
    await services.db.query(
      "INSERT INTO script_log (id, dtable_uuid, owner, org_id, script_name, state) VALUES (900000, ?, 'old@example.invalid', -1, 'old.py', 'finished')",
      [baseUuid],
    );
    const naming = namingFor('adopted');
    await ensureEventLog(
      services.eventLog.jetStreamManager,
      naming,
      { maxAgeSeconds: 0, maxBytes: -1, replicas: 1 },
      services.orm,
      testLogger(),
    );

    const first = await services.eventLog.jetStream.publish(
      subjects.requested(naming),
      encodeEvent(runRequested()),
    );
    assert.ok(first.seq > 900000, `first new run id ${first.seq}`);
  });
});

describe('the scheduler process', () => {
  const mainFile = join(import.meta.dirname, '..', 'src', 'main.ts');

  function run(env: Record<string, string>) {
    const child = spawn(process.execPath, [mainFile], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    );
    return { child, exited, stderr: () => stderr };
  }

  test('stops with one line per bad variable and exit code 1', async () => {
    const started = run({ PYTHON_PROCESS_TIMEOUT: 'abc', SCHEDULER_PORT: 'x' });
    assert.equal(await started.exited, 1);
    assert.deepEqual(started.stderr().trim().split('\n').sort(), [
      'NATS_URL: is required',
      'PYTHON_PROCESS_TIMEOUT: must be a positive integer, got "abc"',
      'PYTHON_SCHEDULER_AUTH_TOKEN: is required',
      'SCHEDULER_PORT: must be a port number (0-65535; 0 picks a free one), got "x"',
      'SEATABLE_SERVER_URL: is required',
    ]);
  });

  test('serves, then stops cleanly with exit code 0 on SIGTERM', async () => {
    const port = await freePort();
    const started = run({
      PYTHON_SCHEDULER_AUTH_TOKEN: token,
      SEATABLE_SERVER_URL: services.standin.url,
      NATS_URL: services.nats.url,
      PIPELINE_SUBJECT_PREFIX: services.naming.prefix,
      DB_HOST: services.db.host,
      DB_PORT: String(services.db.port),
      DB_ROOT_PASSWD: services.db.password,
      DATABASE_NAME: services.db.name,
      SCHEDULER_PORT: String(port),
      LOG_LEVEL: 'warn',
    });
    let pong = '';
    for (let attempt = 0; attempt < 100 && pong !== 'Pong'; attempt++) {
      pong = await fetch(`http://127.0.0.1:${port}/ping/`).then(
        (response) => response.text(),
        () => '',
      );
      if (pong !== 'Pong') await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(pong, 'Pong');
    started.child.kill('SIGTERM');
    assert.equal(await started.exited, 0, started.stderr());
  });
});
