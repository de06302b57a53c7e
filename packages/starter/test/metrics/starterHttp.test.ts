import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import packageJson from '../../package.json' with { type: 'json' };
import { RunSlots } from '../../src/consuming/runSlots.ts';
import { type StarterHttpServer, startStarterHttp } from '../../src/metrics/starterHttp.ts';
import { StarterMetrics } from '../../src/metrics/starterMetrics.ts';

const token = 'metrics-token-for-the-test';
let server: StarterHttpServer;
let engineAnswers = true;

before(async () => {
  const metrics = new StarterMetrics({ processMetrics: false });
  const slots = new RunSlots(4);
  slots.take();
  metrics.watchSlots(slots);
  server = await startStarterHttp({
    host: '127.0.0.1',
    port: 0,
    token,
    metrics,
    log: pino({ level: 'silent' }),
    checkTimeoutMs: 200,
    checks: {
      nats: async () => {},
      docker: async () => {
        if (!engineAnswers) throw new Error('connect ENOENT /var/run/docker.sock');
      },
    },
  });
});

after(async () => {
  await server?.close();
});

async function get(path: string, authorization?: string): Promise<Response> {
  return await fetch(`${server.url}${path}`, {
    headers: authorization ? { authorization } : {},
  });
}

describe('starter health and metrics server', () => {
  test('answers /healthz without a token, with the version it runs', async () => {
    const response = await get('/healthz');
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { status: 'ok', version: packageJson.version });
  });

  test('refuses /metrics and /readyz without the token', async () => {
    assert.equal((await get('/metrics')).status, 403);
    assert.equal((await get('/readyz', 'Bearer wrong')).status, 403);
  });

  test('shows the slots total and busy to a bearer token', async () => {
    const response = await get('/metrics', `Bearer ${token}`);
    assert.equal(response.status, 200);
    const text = await response.text();
    assert.match(text, /^pipeline_starter_slots_total 4$/m);
    assert.match(text, /^pipeline_starter_slots_busy 1$/m);
    assert.match(
      text,
      new RegExp(
        `^pipeline_build_info\\{component="starter",version="${packageJson.version}",node="${process.version}"\\} 1$`,
        'm',
      ),
    );
    for (const name of [
      'pipeline_starter_runs_started_total',
      'pipeline_starter_runs_finished_total',
      'pipeline_starter_container_operation_duration_seconds',
      'pipeline_starter_output_bytes_dropped_total',
    ]) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} is missing`);
    }
  });

  test('answers ready while NATS and the engine answer, 503 naming the engine when it does not', async () => {
    engineAnswers = true;
    const ready = await get('/readyz', `Bearer ${token}`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), {
      status: 'ready',
      checks: { nats: { status: 'ok' }, docker: { status: 'ok' } },
    });

    engineAnswers = false;
    const down = await get('/readyz', `Bearer ${token}`);
    assert.equal(down.status, 503);
    assert.deepEqual(await down.json(), {
      status: 'not_ready',
      checks: {
        nats: { status: 'ok' },
        docker: { status: 'failed', reason: 'connect ENOENT /var/run/docker.sock' },
      },
    });
  });

  test('answers 404 for any other path', async () => {
    assert.equal((await get('/run-script/', `Bearer ${token}`)).status, 404);
  });
});
