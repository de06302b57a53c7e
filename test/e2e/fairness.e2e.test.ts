import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Pipeline, type Submitted, startPipeline } from '../support/pipeline.ts';

// No head-of-line blocking (issue #3): one owner's burst does not hold up another owner's
// single run queued behind it.

let pipeline: Pipeline;
const burstSize = 300;

before(async () => {
  pipeline = await startPipeline({
    label: 'fairness',
    env: { PYTHON_STARTER_THREAD_COUNT: '4', PYTHON_SCHEDULER_RATE_LIMIT_PERCENT: '1' },
  });
});

after(async () => {
  await pipeline?.stop();
});

/** Runs of `owner` that started while the run `runId` waited for a slot. */
async function startedWhileWaiting(owner: string, runId: number): Promise<number> {
  const rows = await pipeline.db.query<{ runs: number | string }>(
    `SELECT COUNT(*) AS runs FROM script_log AS burst, script_log AS single
     WHERE single.id = ? AND burst.owner = ?
       AND burst.started_at > single.created_at AND burst.started_at < single.started_at`,
    [runId, owner],
  );
  return Number(rows[0]?.runs ?? 0);
}

async function unfinished(owner: string): Promise<number> {
  const rows = await pipeline.db.query<{ runs: number | string }>(
    "SELECT COUNT(*) AS runs FROM script_log WHERE owner = ? AND state <> 'finished'",
    [owner],
  );
  return Number(rows[0]?.runs ?? 0);
}

describe('fair share between owners', () => {
  test(`a single run of one owner starts long before a ${burstSize}-run burst of another ends`, async (context) => {
    const burstOwner = 'burst@example.invalid';
    const burst: Submitted[] = [];
    for (let index = 0; index < burstSize; index += 20) {
      const wave = await Promise.all(
        Array.from({ length: 20 }, () =>
          pipeline.submit({
            script: 'print("burst")\n',
            scriptName: 'burst.py',
            body: { owner: burstOwner, org_id: 101 },
          }),
        ),
      );
      burst.push(...wave);
    }
    assert.ok(burst.every((submitted) => submitted.status === 200));

    const single = await pipeline.submit({
      script: 'print("single")\n',
      body: { owner: 'single@example.invalid', org_id: 202 },
    });
    const result = await pipeline.waitFinished(single.id, single.scriptName, 120_000);
    const overtaken = await startedWhileWaiting(burstOwner, single.id);
    const stillQueued = await unfinished(burstOwner);

    assert.equal(result.output, 'single\n');
    // FIFO would start every queued run of the burst first. A fair share starts the single
    // run within about one slot's turn: the burst keeps its equal part of the four slots
    // meanwhile, so a few of its runs (4 to 8 here) start while the single one waits.
    const waitedMs = Date.parse(result.started_at) - Date.parse(result.created_at);
    const detail = `${overtaken} runs of the burst started while it waited ${waitedMs} ms, ${stillQueued} still queued`;
    context.diagnostic(detail);
    assert.ok(stillQueued >= burstSize * 0.75, detail);
    assert.ok(overtaken <= 16, detail);
  });
});
