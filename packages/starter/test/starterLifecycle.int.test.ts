import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Kvm } from '@nats-io/kv';
import {
  bucketNames,
  consumerNames,
  decodeWith,
  encodeJson,
  starterHeartbeatSchema,
} from '@pipeline/events';
import { containerCreateOptions } from '@pipeline/runner';
import { fleetEntryTtlMs } from '../src/fleet/heartbeat.ts';
import { docker, StarterHarness } from './support/starterHarness.ts';

/**
 * The starter's life around the runs: the claim exchange's answers, start-up cleanup,
 * heartbeats, NATS going away, and a graceful stop. Real Docker, real nats-server.
 */

const sleeper = (seconds: number, text: string) =>
  `import time\ntime.sleep(${seconds})\nprint(${JSON.stringify(text)})\n`;

async function until(condition: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 50));
}

describe('claim answers', () => {
  const harness = new StarterHarness('claims');
  before(() => harness.start({ PYTHON_STARTER_THREAD_COUNT: '2' }, process.env.STARTER_TEST_LOG));
  after(() => harness.stop());

  test('a deferred request comes back and runs once granted', async () => {
    const record = await harness.run({
      script: 'print("later")',
      claimAnswers: [{ deferMs: 300 }],
    });
    assert.equal(record.output, 'later\n');
    assert.deepEqual(record.claimDeliveries, [1, 2]);
    assert.equal(record.fetches, 1);
  });

  test('a request nobody answers is kept alive during the claim, put back, and run on the next delivery', async () => {
    const record = await harness.run({ script: 'print("answered")', claimAnswers: ['silent'] });
    assert.equal(record.output, 'answered\n');
    // One claim per delivery: working() kept the first delivery through the 10 s claim wait.
    assert.deepEqual(record.claimDeliveries, [1, 2]);
    assert.equal(record.fetches, 1);
  });

  test('a dropped request is acknowledged and never delivered again', async () => {
    const { runId } = await harness.submit({ script: 'print("never")', claimAnswers: ['drop'] });
    await until(async () => {
      const info = await harness.jsm.consumers.info(harness.naming.stream, consumerNames.starters);
      return (
        info.num_ack_pending === 0 && info.num_pending === 0 && info.delivered.stream_seq >= runId
      );
    });
    assert.deepEqual(harness.claimDeliveries(runId), [1]);
    assert.equal(await harness.containersLeft(runId), 0);
  });
});

describe('start-up, heartbeats, NATS outages and stopping', () => {
  const harness = new StarterHarness('life');
  const log = process.env.STARTER_TEST_LOG;
  before(() => harness.startServices());
  after(() => harness.stop());

  test('removes the containers of its earlier life and of departed starters, and only those', async () => {
    const config = harness.starterConfig({ PYTHON_STARTER_THREAD_COUNT: '1' });
    const stream = await harness.jsm.streams.info(harness.naming.stream);
    const sameLog = { 'org.seatable.pipeline.log': `${harness.naming.stream}@${stream.created}` };
    const fleet = await new Kvm(harness.js).create(bucketNames.fleet(harness.naming), {
      ttl: fleetEntryTtlMs,
      history: 1,
    });
    await fleet.put('alive-starter', encodeJson({ starterId: 'alive-starter' }));
    const create = (runId: number, starterId: string, labels: Record<string, string> = {}) =>
      docker.createContainer(containerCreateOptions(config.sandbox, { runId, starterId, labels }));
    const ownEarlierLife = await create(4242, config.starterId);
    const departed = await create(4243, 'departed-starter', sameLog);
    const alive = await create(4244, 'alive-starter', sameLog);
    const otherInstallation = await create(4245, 'foreign-starter');
    const gone = (error: { statusCode?: number }) => error.statusCode === 404;
    try {
      await harness.startStarter({ PYTHON_STARTER_THREAD_COUNT: '1' }, log);
      await assert.rejects(ownEarlierLife.inspect(), gone);
      await assert.rejects(departed.inspect(), gone);
      assert.equal((await alive.inspect()).Id, alive.id);
      assert.equal((await otherInstallation.inspect()).Id, otherInstallation.id);
    } finally {
      await fleet.delete('alive-starter');
      for (const container of [ownEarlierLife, departed, alive, otherInstallation]) {
        await container.remove({ force: true }).catch(() => {});
      }
    }
  });

  test('announces itself in the fleet bucket with its slots', async () => {
    const kv = await new Kvm(harness.js).open(bucketNames.fleet(harness.naming));
    let entry = await kv.get(harness.config.starterId);
    await until(async () => {
      entry = await kv.get(harness.config.starterId);
      return entry !== null && entry.length > 0;
    });
    const heartbeat = decodeWith(starterHeartbeatSchema, entry?.value ?? new Uint8Array());
    assert.ok(heartbeat.ok, heartbeat.ok ? '' : heartbeat.reason);
    assert.equal(heartbeat.value.starterId, harness.config.starterId);
    assert.equal(heartbeat.value.slots, 1);
    assert.equal(heartbeat.value.draining, false);
  });

  test('BC-16: a run survives a NATS restart and its result is stored once NATS is back', async () => {
    const { runId, finished } = await harness.submit({ script: sleeper(4, 'r 1') });
    await harness.startedOf(runId);
    await harness.nats.restart(3_000);
    const record = await finished;
    assert.equal(record.output, 'r 1\n');
    assert.equal(record.finished.data.success, true);
    assert.equal(record.fetches, 1);

    const next = await harness.run({ script: 'print("r 2")' });
    assert.equal(next.output, 'r 2\n');
  });

  test('BC-16: recreates its consumer when it was deleted and runs nothing twice', async () => {
    const earlier = await harness.run({ script: 'print("before delete")' });
    await harness.jsm.consumers.delete(harness.naming.stream, consumerNames.starters);
    const record = await harness.run({ script: 'print("after delete")' });
    assert.equal(record.output, 'after delete\n');
    assert.equal(record.fetches, 1);
    // The new consumer delivers the old requests again; their claims are dropped, not run.
    assert.ok(harness.claimDeliveries(earlier.runId).length >= 2);
    assert.equal(harness.fetchesOf(earlier.runId), 1);
  });

  test('a graceful stop finishes and reports the run in progress and takes no new one', async () => {
    const running = await harness.submit({ script: sleeper(2, 'finished while stopping') });
    await harness.startedOf(running.runId);
    const stopping = harness.starter.stop();
    const waiting = await harness.submit({ script: 'print("for the next starter")' });
    await stopping;

    const record = await running.finished;
    assert.equal(record.output, 'finished while stopping\n');
    assert.equal(record.finished.data.success, true);
    assert.deepEqual(harness.claimDeliveries(waiting.runId), []);

    await harness.startStarter({ PYTHON_STARTER_THREAD_COUNT: '1' }, log);
    assert.equal((await waiting.finished).output, 'for the next starter\n');
  });

  test('stopping at once (a second SIGTERM) removes its containers, the running one included', async () => {
    const running = await harness.submit({ script: sleeper(60, 'never printed') });
    await harness.startedOf(running.runId);
    assert.equal((await harness.containers(running.runId)).length, 1);

    await harness.starter.stopNow();

    // Gone with the starter, not left running until its next start (the scheduler's
    // watchdog ends the run as lost).
    assert.equal((await harness.containers()).length, 0);
    await harness.startStarter({ PYTHON_STARTER_THREAD_COUNT: '1' }, log);
  });
});
