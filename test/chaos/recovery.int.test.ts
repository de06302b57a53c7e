import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { baseUuid, type Pipeline, type RunView, startPipeline } from '../support/pipeline.ts';

// The two recoveries issue #6 asked for: a resend of the submission that used the month's
// last run gets its first answer, and a log lost with its data ends the runs it took with
// it instead of leaving them pending for ever (BC-16 variant 5).

let pipeline: Pipeline;

before(async () => {
  // No starter: every run stays pending until something ends it.
  pipeline = await startPipeline({ label: 'recovery', starters: 0 });
});

after(async () => {
  await pipeline?.stop();
});

async function poll(id: number, scriptName: string): Promise<RunView | undefined> {
  const query = `dtable_uuid=${baseUuid}&script_name=${encodeURIComponent(scriptName)}`;
  const response = await pipeline.request(`/run-script/${id}/?${query}`);
  if (response.status !== 200) {
    await response.arrayBuffer();
    return undefined;
  }
  return ((await response.json()) as { script: RunView }).script;
}

describe('recovery (issue #6)', () => {
  test('a resend of the submission that used the last run of the month gets the first id', async () => {
    const owner = 'last-run@example.invalid';
    const body = { owner, scripts_running_limit: 1 };
    const key = { 'Idempotency-Key': `last-run-${Date.now()}` };
    const first = await pipeline.submit({
      script: 'print(1)\n',
      scriptName: 'last.py',
      body,
      headers: key,
    });
    assert.equal(first.status, 200, first.text);

    const resent = await pipeline.submit({
      script: 'print(1)\n',
      scriptName: 'last.py',
      body,
      headers: key,
    });
    assert.equal(resent.status, 200, resent.text);
    assert.equal(resent.id, first.id);

    const other = await pipeline.submit({
      script: 'print(1)\n',
      scriptName: 'last.py',
      body,
      headers: { 'Idempotency-Key': `another-${Date.now()}` },
    });
    assert.equal(other.status, 400);
    assert.equal(other.text, 'The number of runs exceeds the limit');
    const plain = await pipeline.submit({ script: 'print(1)\n', scriptName: 'last.py', body });
    assert.equal(plain.status, 400);

    const [runs] = await pipeline.db.query<{ count: number }>(
      'SELECT COUNT(*) AS count FROM script_log WHERE owner = ?',
      [owner],
    );
    assert.equal(Number(runs?.count), 1);
  });

  test('runs pending when the log is lost with its data end visibly as lost', async () => {
    const pending = [];
    for (let index = 0; index < 3; index++) {
      const submitted = await pipeline.submit({ script: 'print(2)\n' });
      assert.equal(submitted.status, 200, submitted.text);
      pending.push(submitted);
    }
    for (const run of pending) {
      for (let attempt = 0; (await poll(run.id, run.scriptName))?.state !== 'pending'; attempt++) {
        if (attempt > 100) assert.fail(`run ${run.id} never showed as pending`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    // Wait until the projector has applied the requests, so the checkpoint is above 0.
    for (let attempt = 0; ; attempt++) {
      const [row] = await pipeline.db.query<{ seq: number }>(
        'SELECT MAX(stream_sequence) AS seq FROM pipeline_checkpoint',
      );
      if (Number(row?.seq ?? 0) >= Math.max(...pending.map((run) => run.id))) break;
      if (attempt > 100) assert.fail('the projector never reached the submissions');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    // The log goes away with its data, as with memory storage or a deleted stream; the
    // scheduler sees the server come back and sets the log up again.
    const admin = await connect({ servers: pipeline.nats.url });
    const manager = await jetstreamManager(admin);
    await manager.streams.delete(`E2E${'recovery'.toUpperCase()}`);
    await admin.close();
    await pipeline.nats.restart();

    for (const run of pending) {
      let view: RunView | undefined;
      for (let attempt = 0; view?.state !== 'finished'; attempt++) {
        if (attempt > 900) assert.fail(`run ${run.id} still ${JSON.stringify(view)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
        view = await poll(run.id, run.scriptName);
      }
      assert.equal(view.success, false);
      assert.match(view.output ?? '', /event log was lost/);
    }

    // New submissions get ids above the lost ones and are not ended.
    const after = await pipeline.submit({ script: 'print(3)\n' });
    assert.equal(after.status, 200, after.text);
    assert.ok(after.id > Math.max(...pending.map((run) => run.id)));
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal((await poll(after.id, after.scriptName))?.state, 'pending');
  });
});
