import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { outputTexts } from '@pipeline/events';
import Docker from 'dockerode';
import { type Pipeline, type RunView, startPipeline, untilNoneLeft } from '../support/pipeline.ts';

// The operator's run controls (issue #4): cancelling pending and running runs, and the
// fleet listing, against two in-process starters of one slot each on the real engine.

let pipeline: Pipeline;
const docker = new Docker();
const sleeper = 'import sys, time\nprint("before the cancel", flush=True)\ntime.sleep(120)\n';

before(async () => {
  pipeline = await startPipeline({
    label: 'adminruns',
    starters: 2,
    env: { PYTHON_STARTER_THREAD_COUNT: '1', PYTHON_PROCESS_TIMEOUT: '150' },
  });
});

after(async () => {
  await pipeline?.stop();
});

async function runView(id: number, scriptName: string): Promise<RunView> {
  const query = `dtable_uuid=6a1f3c2e-9b7d-4e21-8f0a-0c5d2b7e9a11&script_name=${scriptName}`;
  const response = await pipeline.request(`/run-script/${id}/?${query}`);
  return ((await response.json()) as { script: RunView }).script;
}

async function waitForState(id: number, scriptName: string, state: RunView['state']) {
  for (let attempt = 0; attempt < 300; attempt++) {
    if ((await runView(id, scriptName)).state === state) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`run ${id} never became ${state}`);
}

async function cancel(id: number | string): Promise<{ status: number; body: unknown }> {
  const response = await pipeline.request(`/admin/runs/${id}/cancel/`, { method: 'POST' });
  return { status: response.status, body: await response.json() };
}

async function containersOfRun(runId: number): Promise<number> {
  return await untilNoneLeft(() => containersOfRunNow(runId));
}

async function containersOfRunNow(runId: number): Promise<number> {
  // Run ids are per log: other test files' logs have the same ids, their starters not.
  let count = 0;
  for (const starterId of pipeline.starterIds) {
    const containers = await docker.listContainers({
      all: true,
      filters: {
        label: [
          `org.seatable.pipeline.run-id=${runId}`,
          `org.seatable.pipeline.starter-id=${starterId}`,
        ],
      },
    });
    count += containers.length;
  }
  return count;
}

describe('GET /admin/fleet/', () => {
  test('lists both starters with their slots, and the fleet total', async () => {
    const response = await pipeline.request('/admin/fleet/');
    const fleet = (await response.json()) as {
      starters: Array<Record<string, unknown>>;
      total_slots: number;
      busy_slots: number;
    };

    assert.equal(response.status, 200);
    assert.deepEqual(
      fleet.starters.map((starter) => starter.starter_id).sort(),
      [...pipeline.starterIds].sort(),
    );
    for (const starter of fleet.starters) {
      assert.equal(starter.slots, 1);
      assert.equal(starter.draining, false);
      assert.equal(typeof starter.host, 'string');
      assert.match(String(starter.started_at), /^\d{4}-\d\d-\d\dT/);
      assert.match(String(starter.last_seen), /^\d{4}-\d\d-\d\dT/);
    }
    assert.equal(fleet.total_slots, 2);
    assert.equal(typeof fleet.busy_slots, 'number');
  });

  test('answers 403 without the token', async () => {
    const response = await pipeline.request('/admin/fleet/', { auth: false });
    await response.arrayBuffer();
    assert.equal(response.status, 403);
  });
});

describe('POST /admin/runs/<id>/cancel/', () => {
  test('a running run stops and ends finished with what it printed and the cancel text', async () => {
    const first = await pipeline.submit({ script: sleeper });
    const second = await pipeline.submit({ script: sleeper });
    await waitForState(first.id, first.scriptName, 'running');
    await waitForState(second.id, second.scriptName, 'running');
    // Both slots are busy: a third run waits in the queue.
    const queued = await pipeline.submit({ script: 'print("never runs")\n' });

    const pendingCancel = await cancel(queued.id);
    assert.equal(pendingCancel.status, 200);
    assert.deepEqual(pendingCancel.body, { cancelled: true, state: 'pending' });
    const queuedRun = await pipeline.waitFinished(queued.id, queued.scriptName);
    assert.equal(queuedRun.output, outputTexts.cancelled);
    assert.equal(queuedRun.success, false);
    assert.equal(queuedRun.started_at, '');

    // Let the script print its line before the cancel.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    for (const run of [first, second]) {
      const answer = await cancel(run.id);
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.body, { cancelled: true, state: 'running' });
    }
    for (const run of [first, second]) {
      const finished = await pipeline.waitFinished(run.id, run.scriptName, 60_000);
      assert.equal(finished.state, 'finished');
      assert.equal(finished.success, false);
      assert.equal(finished.return_code, -1);
      assert.equal(finished.output, `before the cancel\n${outputTexts.cancelled}`);
      assert.equal(await containersOfRun(run.id), 0);
    }
  });

  test('a finished run answers 409 with an error', async () => {
    const submitted = await pipeline.submit({ script: 'print("done")\n' });
    await pipeline.waitFinished(submitted.id, submitted.scriptName);

    const answer = await cancel(submitted.id);
    assert.equal(answer.status, 409);
    assert.equal(typeof (answer.body as { error: unknown }).error, 'string');
  });

  test('an unknown run answers 404', async () => {
    assert.equal((await cancel(999_999)).status, 404);
    assert.equal((await cancel('abc')).status, 404);
  });
});
