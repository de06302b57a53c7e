import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { MikroORM } from '@mikro-orm/mariadb';
import { Kvm } from '@nats-io/kv';
import { bucketNames, encodeJson, ensureStarterConsumer, outputTexts } from '@pipeline/events';
import type { FastifyInstance } from 'fastify';
import packageJson from '../../package.json' with { type: 'json' };
import { migrateDatabase, openDatabase } from '../../src/db/orm.ts';
import { FleetView, heartbeatStaleMs } from '../../src/fleet/fleetView.ts';
import { buildApp } from '../../src/http/app.ts';
import { MeasuredRunAdmission } from '../../src/metrics/measuredAdmission.ts';
import { checkReadiness } from '../../src/metrics/readiness.ts';
import { SchedulerMetrics } from '../../src/metrics/schedulerMetrics.ts';
import { ScrapeSampler } from '../../src/metrics/scrapeSampler.ts';
import { RunProjection } from '../../src/projection/runProjection.ts';
import { SeaTableClient } from '../../src/seatable/seatableClient.ts';
import { append, runClaimed, runFinished, runStarted } from '../support/events.ts';
import { type Services, standardSubmission, startServices } from '../support/harness.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcpProxy.ts';
import { metricValue } from './exposition.ts';

const run = promisify(execFile);

const timeZone = 'Europe/Berlin';
let services: Services;
let projection: RunProjection;
let app: FastifyInstance;
let token: string;
let proxy: TcpProxy;
let proxiedOrm: MikroORM;
let appBehindProxy: FastifyInstance;

before(async () => {
  services = await startServices('metrics');
  token = services.standin.secret;
  await ensureStarterConsumer(services.eventLog.jetStreamManager, services.naming);
  const metrics = new SchedulerMetrics();
  projection = new RunProjection({
    orm: services.orm,
    eventLog: services.eventLog,
    timeZone,
    logger: services.logger,
    onCommitted: (events) => metrics.countProjected(events),
  });
  projection.start();
  const fleet = new FleetView({ jetStream: services.eventLog.jetStream, naming: services.naming });
  const sampler = new ScrapeSampler({
    orm: services.orm,
    eventLog: services.eventLog,
    fleet,
    logger: services.logger,
  });
  app = await buildApp({
    authToken: token,
    timeZone,
    maxBodyBytes: 1_000_000,
    logger: services.logger,
    orm: services.orm,
    admission: admissionFor(metrics),
    observability: {
      metrics,
      sample: () => sampler.sample(),
      readiness: () =>
        checkReadiness({
          connection: services.connection,
          eventLog: services.eventLog,
          orm: services.orm,
        }),
    },
  });

  // A second app whose database is reached through a relay the test can cut.
  proxy = await startTcpProxy(services.db.host, services.db.port);
  proxiedOrm = await openDatabase({ ...services.db, host: '127.0.0.1', port: proxy.port });
  await migrateDatabase(proxiedOrm);
  const proxiedMetrics = new SchedulerMetrics({ processMetrics: false });
  appBehindProxy = await buildApp({
    authToken: token,
    timeZone,
    maxBodyBytes: 1_000_000,
    logger: services.logger,
    orm: proxiedOrm,
    admission: admissionFor(proxiedMetrics, proxiedOrm),
    observability: {
      metrics: proxiedMetrics,
      sample: () => sampler.sample(),
      readiness: () =>
        checkReadiness({
          connection: services.connection,
          eventLog: services.eventLog,
          orm: proxiedOrm,
          checkTimeoutMs: 1000,
        }),
    },
  });
});

after(async () => {
  await app?.close();
  await appBehindProxy?.close();
  await projection?.stop();
  await proxy?.close();
  await proxiedOrm?.close(true);
  await services?.close();
});

function admissionFor(metrics: SchedulerMetrics, orm = services.orm): MeasuredRunAdmission {
  return new MeasuredRunAdmission(
    {
      orm,
      eventLog: services.eventLog,
      seatable: new SeaTableClient({ serverUrl: services.standin.url, authToken: token }),
      timeZone,
      logger: services.logger,
    },
    metrics,
  );
}

async function scrape(target: FastifyInstance = app): Promise<string> {
  const response = await target.inject({
    method: 'GET',
    url: '/metrics',
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(response.statusCode, 200, response.body);
  assert.match(String(response.headers['content-type']), /^text\/plain/);
  return response.body;
}

async function putHeartbeat(starterId: string, slots: number, busy: number): Promise<void> {
  const kvm = new Kvm(services.eventLog.jetStream);
  const bucket = await kvm
    .create(bucketNames.fleet(services.naming), { ttl: heartbeatStaleMs, history: 1 })
    .catch(() => kvm.open(bucketNames.fleet(services.naming)));
  const now = new Date().toISOString();
  await bucket.put(
    starterId,
    encodeJson({
      starterId,
      host: 'host-1',
      slots,
      busy,
      draining: false,
      startedAt: now,
      at: now,
      version: '0.1.0',
    }),
  );
}

describe('liveness', () => {
  test('answers /healthz without a token, with the version it runs', async () => {
    const response = await app.inject({ method: 'GET', url: '/healthz' });
    assert.equal(response.statusCode, 200);
    assert.deepEqual(response.json(), { status: 'ok', version: packageJson.version });
  });
});

describe('the health check of the image', () => {
  /** Run as Docker runs it: a process of its own with the scheduler's environment. */
  async function runProbe(env: Record<string, string>): Promise<{ code: number; line: string }> {
    const probe = join(import.meta.dirname, '..', '..', 'src', 'metrics', 'healthProbe.ts');
    const base = {
      PATH: process.env.PATH ?? '',
      SEATABLE_SERVER_URL: services.standin.url,
      NATS_URL: services.nats.url,
    };
    try {
      const { stdout } = await run(process.execPath, [probe], { env: { ...base, ...env } });
      return { code: 0, line: stdout.trim() };
    } catch (error) {
      const failed = error as { code?: number; stdout?: string };
      return { code: failed.code ?? -1, line: String(failed.stdout ?? '').trim() };
    }
  }

  test('passes while /readyz says ready, and fails with a wrong token or nothing listening', async () => {
    const listening = await buildApp({
      authToken: token,
      timeZone,
      maxBodyBytes: 1_000_000,
      logger: services.logger,
      orm: services.orm,
      admission: admissionFor(new SchedulerMetrics({ processMetrics: false })),
      observability: {
        metrics: new SchedulerMetrics({ processMetrics: false }),
        sample: async () => ({ projectionLag: null, startersQueue: null, fleet: null }),
        readiness: () =>
          checkReadiness({
            connection: services.connection,
            eventLog: services.eventLog,
            orm: services.orm,
          }),
      },
    });
    await listening.listen({ host: '127.0.0.1', port: 0 });
    const address = listening.server.address();
    const port = String(typeof address === 'object' && address ? address.port : 0);
    try {
      const healthy = await runProbe({ PYTHON_SCHEDULER_AUTH_TOKEN: token, SCHEDULER_PORT: port });
      assert.equal(healthy.code, 0, healthy.line);
      assert.match(healthy.line, /^200 \{"status":"ready"/);

      const wrong = await runProbe({ PYTHON_SCHEDULER_AUTH_TOKEN: 'wrong', SCHEDULER_PORT: port });
      assert.equal(wrong.code, 1);
      assert.match(wrong.line, /^403 /);
    } finally {
      await listening.close();
    }
    const gone = await runProbe({ PYTHON_SCHEDULER_AUTH_TOKEN: token, SCHEDULER_PORT: port });
    assert.equal(gone.code, 1);
    assert.match(gone.line, /did not answer/);
  });
});

describe('metrics', () => {
  test('refuses /metrics without a token or with a wrong one', async () => {
    const missing = await app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(missing.statusCode, 403);
    const wrong = await app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: 'Bearer not-the-token' },
    });
    assert.equal(wrong.statusCode, 403);
  });

  test('lists the pipeline metrics to a bearer token', async () => {
    const text = await scrape();
    for (const name of [
      'pipeline_scheduler_http_request_duration_seconds',
      'pipeline_scheduler_submissions_total',
      'pipeline_scheduler_runs_finished_total',
      'pipeline_scheduler_run_duration_seconds',
      'pipeline_scheduler_projection_lag_events',
      'pipeline_scheduler_starters_queue_pending',
      'pipeline_scheduler_starters_queue_ack_pending',
      'pipeline_scheduler_starters_queue_redelivered',
      'pipeline_scheduler_fleet_starters',
      'pipeline_scheduler_fleet_slots',
      'pipeline_scheduler_scrape_source_up',
      'process_cpu_seconds_total',
    ]) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} is missing`);
    }
    assert.equal(
      metricValue(text, 'pipeline_build_info', {
        component: 'scheduler',
        version: packageJson.version,
        node: process.version,
      }),
      1,
    );
  });

  test('counts an accepted submission, its queued request and its projected finish', async () => {
    const before = await scrape();
    const acceptedBefore = metricValue(before, 'pipeline_scheduler_submissions_total', {
      outcome: 'accepted',
      reason: 'new',
    });
    const pendingBefore = metricValue(before, 'pipeline_scheduler_starters_queue_pending');

    const response = await app.inject({
      method: 'POST',
      url: '/run-script/',
      headers: { authorization: `Token ${token}`, 'content-type': 'application/json' },
      payload: JSON.stringify(standardSubmission()),
    });
    assert.equal(response.statusCode, 200, response.body);
    const runId = response.json().script_id as number;

    const queued = await scrape();
    assert.equal(
      metricValue(queued, 'pipeline_scheduler_submissions_total', {
        outcome: 'accepted',
        reason: 'new',
      }),
      (acceptedBefore ?? 0) + 1,
    );
    assert.equal(
      metricValue(queued, 'pipeline_scheduler_starters_queue_pending'),
      (pendingBefore ?? 0) + 1,
    );
    assert.equal(
      metricValue(queued, 'pipeline_scheduler_http_request_duration_seconds_count', {
        method: 'POST',
        route: '/run-script/',
        status_class: '2xx',
      }),
      1,
    );

    const startedAt = new Date(Date.now() - 3000);
    await append(services.eventLog, runClaimed(runId));
    await append(services.eventLog, runStarted(runId, startedAt));
    const finishedSeq = await append(
      services.eventLog,
      runFinished(runId, startedAt, new Date(startedAt.getTime() + 2500), {
        success: false,
        returnCode: -1,
        timedOut: true,
      }),
    );
    await projection.waitFor(finishedSeq);

    const finished = await scrape();
    assert.equal(
      metricValue(finished, 'pipeline_scheduler_runs_finished_total', { outcome: 'timeout' }),
      1,
    );
    assert.equal(
      metricValue(finished, 'pipeline_scheduler_run_duration_seconds_bucket', {
        outcome: 'timeout',
        le: '5',
      }),
      1,
    );
    assert.equal(
      metricValue(finished, 'pipeline_scheduler_run_duration_seconds_bucket', {
        outcome: 'timeout',
        le: '2',
      }),
      0,
    );
    assert.equal(metricValue(finished, 'pipeline_scheduler_projection_lag_events'), 0);

    // A second RunFinished of the same run (a forged or replayed result) changes nothing in
    // the read model, and nothing in the counts either.
    const againSeq = await append(
      services.eventLog,
      runFinished(runId, startedAt, new Date(startedAt.getTime() + 2500), {
        success: true,
        returnCode: 0,
      }),
      'forged',
    );
    await projection.waitFor(againSeq);
    const again = await scrape();
    assert.equal(
      metricValue(again, 'pipeline_scheduler_runs_finished_total', { outcome: 'timeout' }),
      1,
    );
    assert.equal(
      metricValue(again, 'pipeline_scheduler_runs_finished_total', { outcome: 'success' }) ?? 0,
      0,
    );
  });

  test('shows the fleet slots busy and free from the starters heartbeats', async () => {
    await putHeartbeat('starter-metrics-a', 4, 1);
    await putHeartbeat('starter-metrics-b', 2, 2);
    // FleetView caches a read for two seconds; a fresh view reads the bucket now.
    const sampler = new ScrapeSampler({
      orm: services.orm,
      eventLog: services.eventLog,
      fleet: new FleetView({ jetStream: services.eventLog.jetStream, naming: services.naming }),
      logger: services.logger,
    });
    const metrics = new SchedulerMetrics({ processMetrics: false });
    metrics.applySample(await sampler.sample());
    const { text } = await metrics.render();
    assert.equal(metricValue(text, 'pipeline_scheduler_fleet_starters'), 2);
    assert.equal(metricValue(text, 'pipeline_scheduler_fleet_slots', { state: 'busy' }), 3);
    assert.equal(metricValue(text, 'pipeline_scheduler_fleet_slots', { state: 'free' }), 3);
  });
});

describe('refused submissions', () => {
  function submit(target: FastifyInstance, payload: string, authorization = `Token ${token}`) {
    return target.inject({
      method: 'POST',
      url: '/run-script/',
      headers: { authorization, 'content-type': 'application/json' },
      payload,
    });
  }

  function refused(text: string, reason: string): number {
    return (
      metricValue(text, 'pipeline_scheduler_submissions_total', {
        outcome: 'refused',
        reason,
      }) ?? 0
    );
  }

  test('counts each refusal once, by why it was refused', async () => {
    const before = await scrape();
    const owner = 'refusals@example.invalid';
    const valid = JSON.stringify(standardSubmission({ owner, scripts_running_limit: 1 }));

    assert.equal((await submit(app, valid, '')).statusCode, 403);
    assert.equal((await submit(app, valid, 'Token not-the-token')).statusCode, 403);
    assert.equal((await submit(app, '{"dtable_uuid": ')).statusCode, 400);
    assert.equal((await submit(app, JSON.stringify({ script_name: 'a.py' }))).statusCode, 400);
    const tooLarge = JSON.stringify(standardSubmission({ context_data: 'x'.repeat(1_000_001) }));
    assert.equal((await submit(app, tooLarge)).statusCode, 413);
    assert.equal((await submit(app, valid)).statusCode, 200);
    const overQuota = await submit(app, valid);
    assert.equal(overQuota.statusCode, 400);
    assert.equal(overQuota.body, outputTexts.quotaExceeded);

    const after = await scrape();
    assert.equal(refused(after, 'unauthorized') - refused(before, 'unauthorized'), 2);
    assert.equal(refused(after, 'bad_request') - refused(before, 'bad_request'), 2);
    assert.equal(refused(after, 'body_too_large') - refused(before, 'body_too_large'), 1);
    assert.equal(refused(after, 'quota_exceeded') - refused(before, 'quota_exceeded'), 1);
    assert.equal(refused(after, 'unavailable') - refused(before, 'unavailable'), 0);
  });

  test('counts a submission refused while the database cannot be reached as unavailable', async () => {
    const before = await scrape(appBehindProxy);
    const valid = JSON.stringify(
      standardSubmission({ owner: 'outage@example.invalid', scripts_running_limit: 10 }),
    );
    await proxy.cut();
    try {
      const response = await submit(appBehindProxy, valid);
      assert.equal(response.statusCode, 503, response.body);
    } finally {
      await proxy.restore();
    }
    const after = await scrape(appBehindProxy);
    assert.equal(refused(after, 'unavailable') - refused(before, 'unavailable'), 1);
    assert.equal(refused(after, 'bad_request') - refused(before, 'bad_request'), 0);
  });
});

describe('readiness', () => {
  test('refuses /readyz without a token', async () => {
    const response = await app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(response.statusCode, 403);
  });

  test('answers ready when NATS and the database answer', async () => {
    const response = await app.inject({
      method: 'GET',
      url: '/readyz',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(response.statusCode, 200, response.body);
    assert.deepEqual(response.json(), {
      status: 'ready',
      checks: { nats: { status: 'ok' }, database: { status: 'ok' } },
    });
  });

  test('answers 503 naming the database while it cannot be reached, and ready again after', async () => {
    const readyz = () =>
      appBehindProxy.inject({
        method: 'GET',
        url: '/readyz',
        headers: { authorization: `Bearer ${token}` },
      });
    assert.equal((await readyz()).statusCode, 200);

    await proxy.cut();
    const down = await readyz();
    assert.equal(down.statusCode, 503, down.body);
    const body = down.json();
    assert.equal(body.status, 'not_ready');
    assert.deepEqual(body.checks.nats, { status: 'ok' });
    assert.equal(body.checks.database.status, 'failed');
    assert.equal(typeof body.checks.database.reason, 'string');

    await proxy.restore();
    let again = await readyz();
    // The pool may hand out a connection that died with the cut once; the next one is new.
    for (let attempt = 0; again.statusCode !== 200 && attempt < 5; attempt++)
      again = await readyz();
    assert.equal(again.statusCode, 200, again.body);
  });
});
