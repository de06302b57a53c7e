import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { MikroORM } from '@mikro-orm/mariadb';
import type { FastifyInstance } from 'fastify';
import { openDatabase } from '../src/db/orm.ts';
import { buildApp } from '../src/http/app.ts';
import { RunProjection } from '../src/projection/runProjection.ts';
import { SeaTableClient } from '../src/seatable/seatableClient.ts';
import { RunAdmission } from '../src/submission/runAdmission.ts';
import { append, runFinished, runStarted } from './support/events.ts';
import { baseUuid, type Services, standardSubmission, startServices } from './support/harness.ts';
import { startTcpProxy, type TcpProxy } from './support/tcpProxy.ts';

const timeZone = 'Europe/Berlin';
let services: Services;
let proxy: TcpProxy;
let productOrm: MikroORM;
let projection: RunProjection;
let app: FastifyInstance;

before(async () => {
  services = await startServices('outage');
  proxy = await startTcpProxy(services.db.host, services.db.port);
  productOrm = await openDatabase({
    host: '127.0.0.1',
    port: proxy.port,
    user: services.db.user,
    password: services.db.password,
    name: services.db.name,
    connectTimeoutMs: 1000,
  });
  projection = new RunProjection({
    orm: productOrm,
    eventLog: services.eventLog,
    timeZone,
    logger: services.logger,
  });
  projection.start();
  const admission = new RunAdmission({
    orm: productOrm,
    eventLog: services.eventLog,
    seatable: new SeaTableClient({
      serverUrl: services.standin.url,
      authToken: services.standin.secret,
    }),
    timeZone,
    logger: services.logger,
  });
  app = await buildApp({
    authToken: services.standin.secret,
    timeZone,
    maxBodyBytes: 1_000_000,
    logger: services.logger,
    orm: productOrm,
    admission,
  });
});

after(async () => {
  await app?.close();
  await projection?.stop();
  await productOrm?.close(true);
  await proxy?.close();
  await services?.close();
});

const headers = () => ({
  authorization: `Token ${services.standin.secret}`,
  'content-type': 'application/json',
});

async function timed<T>(work: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const started = performance.now();
  const result = await work();
  return { result, ms: performance.now() - started };
}

function submit(body: Record<string, unknown>) {
  return app.inject({
    method: 'POST',
    url: '/run-script/',
    headers: headers(),
    payload: JSON.stringify(body),
  });
}

function poll(id: number) {
  return app.inject({
    method: 'GET',
    url: `/run-script/${id}/?dtable_uuid=${baseUuid}&script_name=t.py`,
    headers: headers(),
  });
}

async function eventually<T>(probe: () => Promise<T | undefined>, what: string): Promise<T> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('database outage (BC-17)', () => {
  test('answers 503 within 5 s while MariaDB is down, and works again once it is back', async () => {
    const owner = 'outage-user@example.invalid';
    const before = await submit(standardSubmission({ owner }));
    assert.equal(before.statusCode, 200);
    await proxy.cut();

    const limited = await timed(() =>
      submit(standardSubmission({ owner, scripts_running_limit: 10 })),
    );
    assert.equal(limited.result.statusCode, 503, limited.result.body);
    assert.ok(limited.ms < 5000, `${limited.ms} ms`);
    const polled = await timed(() => poll(before.json().script_id));
    assert.equal(polled.result.statusCode, 503);
    assert.ok(polled.ms < 5000, `${polled.ms} ms`);
    assert.match(polled.result.body, /^Service unavailable: /);
    // Without a limit the log alone admits the run; its row follows once the database is back.
    const unlimited = await timed(() => submit(standardSubmission({ owner })));
    assert.equal(unlimited.result.statusCode, 200);
    assert.ok(unlimited.ms < 5000, `${unlimited.ms} ms`);
    console.log(
      `503 answers during the outage: limited ${limited.ms.toFixed(0)} ms, poll ${polled.ms.toFixed(0)} ms; unlimited accept ${unlimited.ms.toFixed(0)} ms`,
    );

    await proxy.restore();
    const acceptedDuringOutage = unlimited.result.json().script_id;
    const row = await eventually(async () => {
      const response = await poll(acceptedDuringOutage);
      return response.statusCode === 200 ? response.json().script : undefined;
    }, 'the run accepted during the outage');
    assert.equal(row.state, 'pending');
    const after = await submit(standardSubmission({ owner, scripts_running_limit: 10 }));
    assert.equal(after.statusCode, 200);
  });

  test('answers 503 within 5 s when MariaDB stops answering instead of refusing', async () => {
    const accepted = await submit(standardSubmission());
    proxy.stall();
    try {
      const polled = await timed(() => poll(accepted.json().script_id));
      assert.equal(polled.result.statusCode, 503);
      assert.ok(polled.ms < 5000, `${polled.ms} ms`);
      console.log(`503 answer while MariaDB hangs: ${polled.ms.toFixed(0)} ms`);
    } finally {
      await proxy.restore();
    }
    assert.equal((await poll(accepted.json().script_id)).statusCode, 200);
  });

  test('applies a result that arrives during the outage exactly once after recovery', async () => {
    const owner = 'outage-stats@example.invalid';
    const accepted = await submit(standardSubmission({ owner }));
    const runId: number = accepted.json().script_id;
    const startedAt = new Date(Date.now() - 8000);
    await projection.waitFor(await append(services.eventLog, runStarted(runId, startedAt)));

    await proxy.cut();
    const finishedSeq = await append(
      services.eventLog,
      runFinished(runId, startedAt, new Date(), { output: 'x\n' }),
    );
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await proxy.restore();

    await projection.waitFor(finishedSeq);
    const script = (await poll(runId)).json().script;
    assert.deepEqual([script.state, script.success, script.output], ['finished', true, 'x\n']);
    const [stats] = await services.db.query<{ runs: number }>(
      'SELECT SUM(total_run_count) AS runs FROM user_run_script_statistics WHERE username = ?',
      [owner],
    );
    assert.equal(Number(stats?.runs), 1);
  });
});

describe('NATS outage (BC-16)', () => {
  test('refuses a submission within 5 s while NATS is down, leaves no pending row, and accepts again after', async () => {
    const owner = 'nats-outage@example.invalid';
    const restarting = services.nats.restart(3000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const during = await timed(() => submit(standardSubmission({ owner })));
    const duringLimited = await timed(() =>
      submit(standardSubmission({ owner, scripts_running_limit: 5 })),
    );
    await restarting;
    assert.equal(during.result.statusCode, 503, during.result.body);
    assert.equal(duringLimited.result.statusCode, 503, duringLimited.result.body);
    assert.ok(during.ms < 5000 && duringLimited.ms < 5000, `${during.ms} / ${duringLimited.ms} ms`);
    console.log(
      `503 answers while NATS is down: ${during.ms.toFixed(0)} ms, with a limit ${duringLimited.ms.toFixed(0)} ms`,
    );
    const [pending] = await services.db.query<{ runs: number }>(
      'SELECT COUNT(*) AS runs FROM script_log WHERE owner = ?',
      [owner],
    );
    assert.equal(Number(pending?.runs), 0);

    const accepted = await eventually(async () => {
      const response = await submit(standardSubmission({ owner }));
      return response.statusCode === 200 ? response.json().script_id : undefined;
    }, 'a submission after NATS is back');
    const startedAt = new Date(Date.now() - 1000);
    await append(services.eventLog, runStarted(accepted, startedAt));
    await projection.waitFor(
      await append(services.eventLog, runFinished(accepted, startedAt, new Date())),
    );
    assert.equal((await poll(accepted)).json().script.state, 'finished');
  });
});
