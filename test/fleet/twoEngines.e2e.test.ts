import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import {
  type Pipeline,
  startPipeline,
  testRunnerImage,
  untilNoneLeft,
} from '../support/pipeline.ts';

// Two starters on two Docker engines share one scheduler, NATS and database (issue #4):
// the second engine is a dockerd of this test's own (own socket, data root and containerd
// namespace, no bridge, no iptables), so it cannot disturb the main engine. The starters are
// child processes, so that one can be killed the hard way.

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const canRunDockerd = process.getuid?.() === 0 && existsSync('/usr/sbin/dockerd');

let directory: string;
let dockerd: ChildProcess | undefined;
let secondSocket: string;
let pipeline: Pipeline;
const starters = new Map<string, ChildProcess>();
const starterIds = ['twoengines-main', 'twoengines-second'];

async function startSecondEngine(): Promise<void> {
  directory = await mkdtemp('/tmp/pl-twoengines-');
  for (const folder of ['data', 'exec']) await mkdir(join(directory, folder));
  secondSocket = join(directory, 'docker.sock');
  // In a network namespace of its own: a dockerd started with --bridge=none removes the
  // default bridge (docker0) it finds, which would cut the main engine's default network.
  dockerd = spawn(
    'unshare',
    [
      '--net',
      'dockerd',
      `--host=unix://${secondSocket}`,
      `--data-root=${join(directory, 'data')}`,
      `--exec-root=${join(directory, 'exec')}`,
      `--pidfile=${join(directory, 'docker.pid')}`,
      '--bridge=none',
      '--iptables=false',
      '--ip-masq=false',
      '--containerd-namespace=pl-twoengines',
      '--containerd-plugins-namespace=pl-twoengines-plugins',
    ],
    { stdio: 'ignore' },
  );
  const engine = new Docker({ socketPath: secondSocket });
  for (let attempt = 0; ; attempt++) {
    try {
      await engine.ping();
      break;
    } catch (error) {
      if (attempt > 100) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  await run('bash', [
    '-c',
    `docker save ${testRunnerImage} | docker -H unix://${secondSocket} load`,
  ]);
}

async function stopSecondEngine(): Promise<void> {
  if (dockerd && dockerd.exitCode === null) {
    const exited = new Promise((resolve) => dockerd?.once('exit', resolve));
    dockerd.kill('SIGTERM');
    await exited;
  }
  if (directory) await rm(directory, { recursive: true, force: true });
}

function startStarterProcess(starterId: string): ChildProcess {
  const second = starterId === 'twoengines-second';
  const child = spawn(process.execPath, ['packages/starter/src/main.ts'], {
    cwd: repoRoot,
    env: {
      ...process.env,
      ...pipeline.env,
      STARTER_ID: starterId,
      // The second engine has no bridge: its runs get no network at all.
      ...(second ? { DOCKER_HOST: `unix://${secondSocket}`, PYTHON_RUNNER_NETWORK: 'none' } : {}),
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  starters.set(starterId, child);
  return child;
}

async function stopStarterProcess(starterId: string, signal: NodeJS.Signals): Promise<void> {
  const child = starters.get(starterId);
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
}

async function leftContainers(engine: Docker): Promise<number> {
  const containers = await engine.listContainers({
    all: true,
    filters: { label: [`org.seatable.pipeline.log`] },
  });
  return containers.filter((container) =>
    starterIds.includes(container.Labels['org.seatable.pipeline.starter-id'] ?? ''),
  ).length;
}

async function waitForFleet(size: number): Promise<void> {
  for (let attempt = 0; attempt < 300; attempt++) {
    const response = await pipeline.request('/admin/fleet/');
    const fleet = (await response.json()) as { starters: unknown[] };
    if (fleet.starters.length >= size) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`the fleet never had ${size} starters`);
}

describe('two starters on two Docker engines', {
  skip: !canRunDockerd && 'needs root and dockerd',
}, () => {
  before(async () => {
    await startSecondEngine();
    pipeline = await startPipeline({
      label: 'twoengines',
      starters: 0,
      env: {
        PYTHON_PROCESS_TIMEOUT: '10',
        PYTHON_STARTER_THREAD_COUNT: '4',
        PIPELINE_WATCHDOG_GRACE_SECONDS: '3',
        PIPELINE_WATCHDOG_INTERVAL_SECONDS: '1',
      },
    });
    for (const starterId of starterIds) startStarterProcess(starterId);
    await waitForFleet(2);
  });

  after(async () => {
    for (const starterId of starterIds) await stopStarterProcess(starterId, 'SIGKILL');
    await pipeline?.stop();
    await stopSecondEngine();
  });

  test('share 200 runs, each run exactly once', async () => {
    const submitted = [];
    for (let index = 0; index < 200; index++) {
      const answer = await pipeline.submit({ script: `print(${index})\n` });
      assert.equal(answer.status, 200, answer.text);
      submitted.push({ ...answer, index });
    }
    for (const run of submitted) {
      const finished = await pipeline.waitFinished(run.id, run.scriptName, 180_000);
      assert.equal(finished.output, `${run.index}\n`);
      assert.equal(finished.success, true);
      assert.equal(pipeline.standin.fetchCount(run.scriptName), 1, `run ${run.id} fetched once`);
    }

    const perStarter = await pipeline.db.query<{ starter_id: string; runs: number }>(
      'SELECT starter_id, COUNT(*) AS runs FROM run_detail GROUP BY starter_id',
    );
    const counts = Object.fromEntries(perStarter.map((row) => [row.starter_id, Number(row.runs)]));
    for (const starterId of starterIds)
      assert.ok((counts[starterId] ?? 0) > 0, JSON.stringify(counts));
    assert.equal(
      Object.values(counts).reduce((sum, runs) => sum + runs, 0),
      200,
    );
  });

  test('a starter killed mid-run and restarted leaves no run running and no container', async (context) => {
    const submitted = [];
    for (let index = 0; index < 8; index++) {
      submitted.push(
        await pipeline.submit({ script: 'import time\ntime.sleep(5)\nprint("slept")\n' }),
      );
    }
    const victim = 'twoengines-second';
    for (let attempt = 0; ; attempt++) {
      const [row] = await pipeline.db.query<{ running: number }>(
        `SELECT COUNT(*) AS running FROM script_log s JOIN run_detail d ON d.run_id = s.id
         WHERE s.state = 'running' AND d.starter_id = ?`,
        [victim],
      );
      if (Number(row?.running) > 0) break;
      if (attempt > 300) throw new Error('the second starter never ran one of the runs');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    await stopStarterProcess(victim, 'SIGKILL');
    // A little later, so that the new life's start is clearly after the claims.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    startStarterProcess(victim);

    let lost = 0;
    for (const run of submitted) {
      const finished = await pipeline.waitFinished(run.id, run.scriptName, 120_000);
      assert.equal(finished.state, 'finished');
      if (finished.output?.includes('lost')) lost += 1;
      assert.ok(
        finished.output === 'slept\n' || finished.output?.includes('lost'),
        finished.output ?? '',
      );
      assert.ok(pipeline.standin.fetchCount(run.scriptName) <= 1);
    }
    context.diagnostic(`${lost} of ${submitted.length} runs ended as lost`);
    assert.ok(lost > 0, 'the killed starter held at least one run');
    // The restarted starter swept its earlier life's containers before taking work.
    await waitForFleet(2);
    // A run's result comes before its container's removal ends: allow it a moment.
    const secondEngine = new Docker({ socketPath: secondSocket });
    assert.equal(await untilNoneLeft(() => leftContainers(secondEngine)), 0);
    assert.equal(await untilNoneLeft(() => leftContainers(new Docker())), 0);
  });
});
