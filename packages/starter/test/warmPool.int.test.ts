import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  containerCreateOptions,
  POOL_LABEL,
  pooledContainerCreateOptions,
  RUN_ID_LABEL,
  STARTER_ID_LABEL,
} from '@pipeline/runner';
import { docker, type RunRecord, StarterHarness } from './support/starterHarness.ts';

/**
 * The warm pool against the real engine: a starter keeping two prepared sandboxes, and runs
 * that must each get a container of their own, never one another run used.
 */

const harness = new StarterHarness('pool');

before(async () => {
  await harness.start(
    { PYTHON_STARTER_POOL_SIZE: '2', PYTHON_STARTER_THREAD_COUNT: '4' },
    process.env.STARTER_TEST_LOG,
  );
});

after(async () => {
  await harness.stop();
});

/** The prepared containers of the pool now, by id. */
async function pooled(): Promise<string[]> {
  const found = await docker.listContainers({
    all: true,
    filters: { label: [`${STARTER_ID_LABEL}=${harness.config.starterId}`, POOL_LABEL] },
  });
  return found.map((entry) => entry.Id);
}

/** Waits until the pool holds `count` prepared containers that run (bounded: 30 s). */
async function poolFilled(count: number): Promise<string[]> {
  for (let attempt = 0; attempt < 600; attempt++) {
    const ids = await pooled();
    // A container being removed may still be listed for a moment, then inspect fails.
    const running = await Promise.all(
      ids
        .map(async (id) =>
          (await docker.getContainer(id).inspect()).State.Running.valueOf() ? id : null,
        )
        .map((check) => check.catch(() => null)),
    );
    const live = running.filter((id): id is string => id !== null);
    if (live.length >= count) return live;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the pool never held ${count} prepared containers`);
}

async function exists(containerId: string): Promise<boolean> {
  try {
    await docker.getContainer(containerId).inspect();
    return true;
  } catch {
    return false;
  }
}

async function gone(containerId: string): Promise<boolean> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (!(await exists(containerId))) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

/** Prints what the run sees of its container; leaves a file for any later run to find. */
const probeScript = `
import glob, json, os, socket
seen = sorted(glob.glob('/tmp/*') + glob.glob('/tmp/.*') + glob.glob(os.path.expanduser('~') + '/*'))
with open('/tmp/left-by-an-earlier-run', 'w') as mark:
    mark.write('x')
print(json.dumps({'hostname': socket.gethostname(), 'seen': seen, 'token': os.environ.get('api_token')}))
`;

function probe(record: RunRecord): { hostname: string; seen: string[]; token: string } {
  assert.equal(record.finished.data.success, true, record.output);
  return JSON.parse(record.output) as { hostname: string; seen: string[]; token: string };
}

describe('the warm pool', () => {
  test('prepared containers hold no secret and the same lock-down as a cold run', async () => {
    const [id] = await poolFilled(2);
    assert.ok(id);
    const info = await docker.getContainer(id).inspect();
    assert.equal(
      info.Config.Env.some((entry) => /api_token|dtable_web_url/i.test(entry)),
      false,
      'no run variable in the configuration',
    );
    assert.equal(info.Config.Labels[RUN_ID_LABEL], undefined, 'no run is known yet');
    const cold = containerCreateOptions(harness.config.sandbox, { runId: 1, starterId: 'x' });
    const warm = pooledContainerCreateOptions(harness.config.sandbox, {
      starterId: 'x',
      profileHash: 'h',
    });
    assert.deepEqual(warm.HostConfig, cold.HostConfig);
    assert.equal(info.HostConfig.ReadonlyRootfs, true);
    assert.deepEqual(info.HostConfig.CapDrop, ['ALL']);
    assert.deepEqual(info.HostConfig.SecurityOpt, ['no-new-privileges:true']);
    assert.equal(info.HostConfig.PidsLimit, harness.config.sandbox.pidsLimit);
    assert.equal(info.HostConfig.Memory, harness.config.sandbox.memoryBytes);
    assert.equal(info.HostConfig.NetworkMode, harness.config.sandbox.network);
    assert.equal(info.Config.User, harness.config.sandbox.user);
  });

  test('many runs through a pool of two: every run has a container no other run had', async () => {
    const prepared = await poolFilled(2);
    const records: RunRecord[] = [];
    // One at a time, then bursts of four: the pool is drained and refilled in between.
    for (let index = 0; index < 4; index++)
      records.push(await harness.run({ script: probeScript }));
    for (let burst = 0; burst < 2; burst++) {
      records.push(
        ...(await Promise.all(
          Array.from({ length: 4 }, () => harness.run({ script: probeScript })),
        )),
      );
    }
    const containerIds = records.map((record) => record.started?.data.containerId ?? '');
    const hostnames = records.map((record) => probe(record).hostname);
    assert.equal(new Set(containerIds).size, records.length, 'one container per run');
    assert.equal(new Set(hostnames).size, records.length, 'one hostname per run');
    assert.ok(prepared.includes(containerIds[0] ?? ''), 'the first run took a prepared container');
    for (const record of records) {
      assert.deepEqual(probe(record).seen, [], `run ${record.runId} found nothing of another run`);
      assert.equal(probe(record).token, 'TEMP-TOKEN', 'the token arrived with the hand-over');
    }
    for (const containerId of containerIds) {
      assert.ok(await gone(containerId), `container ${containerId.slice(0, 12)} removed`);
    }
  });

  test('a prepared container that stopped while waiting is never handed a run', async () => {
    const prepared = await poolFilled(2);
    await Promise.all(
      prepared.map((id) =>
        docker
          .getContainer(id)
          .kill()
          .catch(() => {}),
      ),
    );
    const record = await harness.run({ script: 'print("after the kill")' });
    assert.equal(record.output, 'after the kill\n');
    assert.equal(record.finished.data.success, true);
    assert.ok(!prepared.includes(record.started?.data.containerId ?? ''), 'a fresh container');
    for (const id of prepared) assert.ok(await gone(id), 'the stopped one was removed');
  });

  test("the run's deadline counts from its assignment, not from the container's start", async () => {
    await poolFilled(2);
    // The prepared containers have waited longer than the whole timeout.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    const record = await harness.run({
      script: 'import time\ntime.sleep(1)\nprint("in time")',
      timeoutSeconds: 2,
    });
    assert.equal(record.finished.data.timedOut, false);
    assert.equal(record.output, 'in time\n');
    const { durationMs } = record.finished.data;
    assert.ok(durationMs >= 1_000 && durationMs < 2_000, `ran ${durationMs} ms`);
  });

  test('a run that times out in a prepared container ends timed out', async () => {
    await poolFilled(2);
    const record = await harness.run({
      script: 'import time\nprint("waiting", flush=True)\ntime.sleep(30)',
      timeoutSeconds: 1,
    });
    assert.equal(record.finished.data.timedOut, true);
    assert.match(record.output, /^waiting\n/);
  });

  test("after a crash, the next start with the same STARTER_ID removes the crashed pool's containers", async () => {
    const left = await poolFilled(2);
    await harness.starter.abort();
    const remaining = await pooled();
    for (const id of left) assert.ok(remaining.includes(id), 'a crash leaves them behind');
    await harness.startStarter(
      { PYTHON_STARTER_POOL_SIZE: '2', PYTHON_STARTER_THREAD_COUNT: '4' },
      process.env.STARTER_TEST_LOG,
    );
    for (const id of left) assert.equal(await exists(id), false, 'swept at start-up');
    const record = await harness.run({ script: 'print("after the restart")' });
    assert.equal(record.output, 'after the restart\n');
  });

  test('stopping the starter removes every prepared container', async () => {
    await poolFilled(2);
    await harness.starter.stop();
    assert.deepEqual(await pooled(), []);
    assert.equal(await harness.containersLeft(), 0);
  });
});
