import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { EventStreamReader, type StreamEvent } from '../support/eventStream.ts';
import { type Pipeline, type RunView, startPipeline } from '../support/pipeline.ts';

// Live output (issue #8): while a run runs, GET /admin/runs/<id>/output/live/ streams what it
// printed so far and then each new piece, fed by the starter over core NATS; real Docker.

const outputLimit = 3000;
let pipeline: Pipeline;

before(async () => {
  pipeline = await startPipeline({
    label: 'liveoutput',
    env: { PYTHON_PROCESS_TIMEOUT: '30', PYTHON_RUNNER_OUTPUT_LIMIT: String(outputLimit) },
  });
});

after(async () => {
  await pipeline?.stop();
});

async function openLive(runId: number | string): Promise<EventStreamReader> {
  const response = await pipeline.request(`/admin/runs/${runId}/output/live/`, {
    headers: { Accept: 'text/event-stream' },
  });
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
  return new EventStreamReader(response);
}

async function runState(runId: number, scriptName: string): Promise<RunView> {
  const query = `dtable_uuid=6a1f3c2e-9b7d-4e21-8f0a-0c5d2b7e9a11&script_name=${scriptName}`;
  const response = await pipeline.request(`/run-script/${runId}/?${query}`);
  return ((await response.json()) as { script: RunView }).script;
}

async function untilRunning(runId: number, scriptName: string): Promise<void> {
  for (let attempt = 0; attempt < 150; attempt++) {
    if ((await runState(runId, scriptName)).state === 'running') return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`run ${runId} never ran`);
}

/** Reads output events until one contains `text`; returns them all. */
async function outputUntil(stream: EventStreamReader, text: string): Promise<StreamEvent[]> {
  const events: StreamEvent[] = [];
  let printed = '';
  while (!printed.includes(text)) {
    const event = await stream.next();
    if (!event) throw new Error(`stream ended before "${text}"`);
    events.push(event);
    assert.equal(event.event, 'output', `expected output, got ${JSON.stringify(event)}`);
    printed += (event.data as { text: string }).text;
  }
  return events;
}

function printedText(events: StreamEvent[]): string {
  return events
    .filter((event) => event.event === 'output')
    .map((event) => (event.data as { text: string }).text)
    .join('');
}

describe('live output of a running run', () => {
  test('streams what was printed so far, then the next piece, then the end with the result', async () => {
    const submitted = await pipeline.submit({
      script: [
        'import time',
        'print("first <b>line</b>", flush=True)',
        'time.sleep(4)',
        'print("second line", flush=True)',
        '',
      ].join('\n'),
    });
    assert.equal(submitted.status, 200, submitted.text);
    await untilRunning(submitted.id, submitted.scriptName);

    const early = await openLive(submitted.id);
    const beforeSleep = await outputUntil(early, 'first <b>line</b>');
    assert.doesNotMatch(printedText(beforeSleep), /second line/);
    assert.equal((await runState(submitted.id, submitted.scriptName)).state, 'running');

    // Someone who opens the run now gets what was printed so far, at once.
    const late = await openLive(submitted.id);
    const [caughtUp] = await outputUntil(late, 'first <b>line</b>');
    assert.deepEqual(caughtUp?.data, { offset: 0, text: 'first <b>line</b>\n' });

    const rest = await early.until('end');
    assert.equal(printedText([...beforeSleep, ...rest]), 'first <b>line</b>\nsecond line\n');
    assert.deepEqual(rest.at(-1)?.data, {
      state: 'finished',
      success: true,
      return_code: 0,
      output: 'first <b>line</b>\nsecond line\n',
    });
    assert.equal(await early.next(), null, 'the stream closes after the end');
    assert.equal((await late.until('end')).at(-1)?.event, 'end');
  });

  test('a finished run answers its final output and ends', async () => {
    const submitted = await pipeline.submit({
      script: 'print("done already")\nraise SystemExit(3)\n',
    });
    await pipeline.waitFinished(submitted.id, submitted.scriptName);

    const stream = await openLive(submitted.id);
    assert.deepEqual(await stream.next(), {
      event: 'end',
      data: { state: 'finished', success: false, return_code: 3, output: 'done already\n' },
    });
    assert.equal(await stream.next(), null);
  });

  test('never carries more than the output limit, counted in characters', async () => {
    // 40 lines of 100 characters, each with astral characters (two UTF-16 units each).
    const submitted = await pipeline.submit({
      script: [
        'import time',
        'for i in range(40):',
        '    print("%03d" % i + "\\U0001F600" * 96, flush=True)',
        '    time.sleep(0.05)',
        '',
      ].join('\n'),
    });
    const stream = await openLive(submitted.id);
    const events = await stream.until('end');

    const expected = Array.from(
      { length: 40 },
      (_, index) => `${String(index).padStart(3, '0')}${'\u{1F600}'.repeat(96)}\n`,
    ).join('');
    const live = printedText(events);
    assert.equal([...live].length, outputLimit);
    assert.equal(live, [...expected].slice(0, outputLimit).join(''));
    const end = events.at(-1)?.data as { output: string };
    assert.ok(end.output.startsWith(live), 'the final output starts with what was streamed');
  });

  test('answers 404 for an unknown run and 403 without the token', async () => {
    for (const id of ['999999', 'abc', '0']) {
      const response = await pipeline.request(`/admin/runs/${id}/output/live/`);
      assert.equal(response.status, 404, id);
      assert.deepEqual(await response.json(), { error: 'run not found' });
    }
    const refused = await pipeline.request('/admin/runs/1/output/live/', { auth: false });
    assert.equal(refused.status, 403);
    await refused.arrayBuffer();
  });
});
