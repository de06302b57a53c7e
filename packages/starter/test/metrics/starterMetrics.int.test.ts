import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { StarterHarness } from '../support/starterHarness.ts';

/**
 * The starter's metrics and health server with the real engine, the offline runner image
 * and a nats-server of the test's own: runs move the counters, the engine and NATS answer.
 */
const run = promisify(execFile);
const harness = new StarterHarness('metrics');
const token = 'starter-metrics-test-token';
let url: string;

before(async () => {
  await harness.startServices();
  const starter = await harness.startStarter({
    PYTHON_STARTER_THREAD_COUNT: '3',
    PYTHON_RUNNER_OUTPUT_LIMIT: '1000',
    PYTHON_STARTER_METRICS_PORT: String(await freePort()),
    PIPELINE_METRICS_TOKEN: token,
  });
  assert.ok(starter.httpUrl);
  url = starter.httpUrl;
});

after(async () => {
  await harness.stop();
});

/** A loopback port that was free a moment ago: the configuration takes no 0. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function scrape(): Promise<string> {
  const response = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(response.status, 200);
  return await response.text();
}

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** The image's health check, run as Docker runs it: a process of its own, judged by its exit. */
async function runProbe(env: Record<string, string>): Promise<{ code: number; line: string }> {
  const probe = join(import.meta.dirname, '..', '..', 'src', 'metrics', 'healthProbe.ts');
  try {
    const { stdout } = await run(process.execPath, [probe], {
      env: { PATH: process.env.PATH, ...env },
    });
    return { code: 0, line: stdout.trim() };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string };
    return { code: failed.code ?? -1, line: String(failed.stdout ?? '').trim() };
  }
}

describe('starter metrics with the real engine', () => {
  test('the health check of the image passes with the token and fails without the port or the right token', async () => {
    const port = new URL(url).port;
    const healthy = await runProbe({
      PYTHON_STARTER_METRICS_PORT: port,
      PIPELINE_METRICS_TOKEN: token,
    });
    assert.equal(healthy.code, 0, healthy.line);
    assert.match(healthy.line, /^200 .*"heartbeat":\{"status":"ok"\}/);

    const wrongToken = await runProbe({
      PYTHON_STARTER_METRICS_PORT: port,
      PIPELINE_METRICS_TOKEN: 'wrong',
    });
    assert.equal(wrongToken.code, 1);
    assert.match(wrongToken.line, /^403 /);

    const off = await runProbe({});
    assert.equal(off.code, 1);
    assert.match(off.line, /PYTHON_STARTER_METRICS_PORT is off/);
  });

  test('answers /healthz without a token and /readyz with NATS and Docker ok', async () => {
    const health = await fetch(`${url}/healthz`);
    assert.equal(health.status, 200);
    const ready = await fetch(`${url}/readyz`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), {
      status: 'ready',
      checks: { nats: { status: 'ok' }, docker: { status: 'ok' }, heartbeat: { status: 'ok' } },
    });
  });

  test('counts runs by outcome, times container create and start, counts dropped output', async () => {
    const ok = await harness.run({ script: 'print("hello")' });
    assert.equal(ok.finished.data.success, true);
    const failed = await harness.run({ script: 'import sys; sys.exit(3)' });
    assert.equal(failed.finished.data.returnCode, 3);
    const flood = await harness.run({ script: 'print("x" * 500_000)' });
    assert.equal(flood.finished.data.outputTruncated, true);
    const accents = await harness.run({ script: 'print("é" * 3000)' });
    assert.equal(accents.finished.data.outputTruncated, true);

    const text = await scrape();
    assert.match(
      text,
      /^pipeline_build_info\{component="starter",version="[^"]+",node="v\d+[^"]*"\} 1$/m,
    );
    assert.equal(sample(text, 'pipeline_starter_slots_total'), 3);
    assert.equal(sample(text, 'pipeline_starter_slots_busy'), 0);
    assert.equal(sample(text, 'pipeline_starter_runs_started_total'), 4);
    assert.equal(sample(text, 'pipeline_starter_runs_finished_total{outcome="success"}'), 3);
    assert.equal(sample(text, 'pipeline_starter_runs_finished_total{outcome="failure"}'), 1);
    assert.equal(
      sample(
        text,
        'pipeline_starter_container_operation_duration_seconds_count{operation="create"}',
      ),
      4,
    );
    assert.equal(
      sample(
        text,
        'pipeline_starter_container_operation_duration_seconds_count{operation="start"}',
      ),
      4,
    );
    // The limit keeps 1000 characters of each: 500,001 - 1000 bytes of the first (the line
    // feed included), 6001 - 2000 of the second ('é' is two bytes in UTF-8).
    assert.equal(
      sample(text, 'pipeline_starter_output_bytes_dropped_total'),
      500_001 - 1000 + (6001 - 2000),
    );
  });
});
