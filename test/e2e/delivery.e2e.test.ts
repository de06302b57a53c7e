import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { consumerNames, namingFor } from '@pipeline/events';
import { baseUuid, type Pipeline, startPipeline } from '../support/pipeline.ts';

// At-least-once delivery must still mean exactly-once execution (BC-14), and a NATS
// restart loses nothing (BC-16).

let pipeline: Pipeline;

before(async () => {
  pipeline = await startPipeline({
    label: 'delivery',
    env: { PYTHON_STARTER_THREAD_COUNT: '1', PYTHON_PROCESS_TIMEOUT: '30' },
  });
});

after(async () => {
  await pipeline?.stop();
});

/** How many times the run's script was downloaded: how many executions started. */
function fetchesOf(scriptName: string): number {
  return pipeline.standin.fetchCount(scriptName);
}

async function statisticsCount(): Promise<number> {
  const rows = await pipeline.db.query<{ runs: number | string | null }>(
    'SELECT SUM(total_run_count) AS runs FROM dtable_run_script_statistics WHERE dtable_uuid = ?',
    [baseUuid],
  );
  return Number(rows[0]?.runs ?? 0);
}

describe('delivery', () => {
  test('a run longer than the acknowledgement wait runs once and counts once (BC-14 A)', async () => {
    const before = await statisticsCount();
    const submitted = await pipeline.submit({
      script: 'import time\ntime.sleep(12)\nprint("done")\n',
    });
    assert.equal(submitted.status, 200, submitted.text);

    const result = await pipeline.waitFinished(submitted.id, submitted.scriptName, 60_000);

    assert.equal(result.output, 'done\n');
    assert.equal(result.success, true);
    assert.equal(fetchesOf(submitted.scriptName), 1);
    assert.equal((await statisticsCount()) - before, 1);
    const connection = await connect({ servers: pipeline.nats.url });
    const consumer = await (await jetstreamManager(connection)).consumers.info(
      namingFor(pipeline.env.PIPELINE_SUBJECT_PREFIX ?? '').stream,
      consumerNames.starters,
    );
    await connection.close();
    assert.equal(consumer.num_ack_pending, 0);
    assert.equal(consumer.num_redelivered, 0);
  });

  test('results cannot be forged over HTTP: the old result endpoint does not exist (BC-14 C)', async () => {
    const forged = await pipeline.request('/script-result/', {
      method: 'POST',
      auth: false,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ script_id: 1, success: true, output: 'forged' }),
    });
    const withToken = await pipeline.request('/script-result/', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ script_id: 1, success: true, output: 'forged' }),
    });

    // No result path exists at all: results reach the pipeline only through the log.
    assert.ok([403, 404].includes(forged.status), String(forged.status));
    assert.equal(withToken.status, 404);
  });

  test('a NATS restart with runs queued and running loses nothing and runs each once (BC-16)', async () => {
    const script =
      'import sys, json, time\ni = json.load(sys.stdin)["i"]\ntime.sleep(2)\nprint("r", i)\n';
    const runs = [];
    for (let i = 1; i <= 5; i++) {
      const submitted = await pipeline.submit({ script, body: { context_data: { i } } });
      assert.equal(submitted.status, 200, submitted.text);
      runs.push({ ...submitted, i });
    }

    await pipeline.nats.stop({ keepStore: true });
    const duringOutage = Date.now();
    const sixth = await pipeline.submit({ script, body: { context_data: { i: 6 } } });
    const outageAnswerMs = Date.now() - duringOutage;
    await new Promise((resolve) => setTimeout(resolve, 5000));
    await pipeline.nats.restart();

    // Accepted, or refused fast with a 5xx and nothing left pending.
    assert.ok(
      sixth.status === 200 || (sixth.status >= 500 && outageAnswerMs <= 5000),
      `${sixth.status} after ${outageAnswerMs} ms`,
    );
    if (sixth.status === 200) runs.push({ ...sixth, i: 6 });
    for (const run of runs) {
      const result = await pipeline.waitFinished(run.id, run.scriptName, 90_000);
      assert.equal(result.output, `r ${run.i}\n`, JSON.stringify(result));
      assert.equal(result.success, true);
      assert.equal(fetchesOf(run.scriptName), 1, `fetches of run ${run.id}`);
    }
  });
});
