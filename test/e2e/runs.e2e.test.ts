import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { outputTexts } from '@pipeline/events';
import Docker from 'dockerode';
import { type Pipeline, startPipeline, untilNoneLeft } from '../support/pipeline.ts';

// The whole path as SeaTable sees it: POST /run-script/, then GET until finished, with a
// real scheduler, starter, NATS, MariaDB and Docker engine (issue #2, "Done when").

let pipeline: Pipeline;
const TIMEOUT_SECONDS = 10;
const docker = new Docker();

before(async () => {
  pipeline = await startPipeline({
    label: 'runs',
    // T and L of ../shared/cases (README): BC-07's run 1 (fill /tmp, import pandas) must fit
    // in T with room to spare on a loaded 2-core machine; 5 s was too tight for it.
    env: { PYTHON_PROCESS_TIMEOUT: String(TIMEOUT_SECONDS), PYTHON_RUNNER_OUTPUT_LIMIT: '1000000' },
  });
});

after(async () => {
  await pipeline?.stop();
});

async function run(script: string, body: Record<string, unknown> = {}) {
  const submitted = await pipeline.submit({ script, body });
  assert.equal(submitted.status, 200, submitted.text);
  return await pipeline.waitFinished(submitted.id, submitted.scriptName);
}

async function containersOfRun(runId: number): Promise<number> {
  return await untilNoneLeft(() => containersOfRunNow(runId));
}

async function containersOfRunNow(runId: number): Promise<number> {
  const containers = await docker.listContainers({
    all: true,
    // Run ids are per log: other test files' logs have the same ids, their starters not.
    filters: {
      label: [
        `org.seatable.pipeline.run-id=${runId}`,
        `org.seatable.pipeline.starter-id=${pipeline.starterIds[0]}`,
      ],
    },
  });
  return containers.length;
}

describe('a run from submission to result', () => {
  test('print("Hello World") ends finished with its output, success and return code 0', async () => {
    const result = await run('print("Hello World")\n');

    assert.equal(result.state, 'finished');
    assert.equal(result.output, 'Hello World\n');
    assert.equal(result.success, true);
    assert.equal(result.return_code, 0);
    assert.match(result.started_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$/);
    assert.equal(await containersOfRun(result.id), 0);
  });

  test('the context data arrives on standard input with non-ASCII text intact (BC-09 A)', async () => {
    const context = { row: { Name: 'Zoë 😀 \u2028 "q"', n: 1 }, big: 'x'.repeat(200_000) };
    const result = await run(
      [
        'import sys, json',
        'raw = sys.stdin.buffer.read()',
        'd = json.loads(raw.decode("utf-8"))',
        'print(d["row"]["Name"] == "Zo\\u00eb \\U0001F600 \\u2028 \\"q\\"", d["row"]["n"], len(d["big"]))',
      ].join('\n'),
      { context_data: context },
    );

    assert.equal(result.output, 'True 1 200000\n');
    assert.equal(result.success, true);
    assert.deepEqual(result.context_data, context);
  });

  test('the script sees dtable_web_url, api_token, is_cloud and TZ', async () => {
    const result = await run(
      'import os\nprint(os.environ["dtable_web_url"], bool(os.environ["api_token"]), os.environ["is_cloud"], os.environ["TZ"])\n',
    );

    assert.equal(result.output, `${pipeline.standin.url} True 1 Europe/Berlin\n`);
  });

  test('a script that exits 3 ends unsuccessful with return code 3 and its stderr', async () => {
    const result = await run(
      'import sys\nprint("x")\nsys.stderr.write("went wrong\\n")\nsys.exit(3)\n',
    );

    assert.equal(result.success, false);
    assert.equal(result.return_code, 3);
    assert.match(result.output ?? '', /x\n/);
    assert.match(result.output ?? '', /went wrong\n/);
  });

  test('an uncaught exception ends with return code 1 and the traceback (BC-02 C)', async () => {
    const result = await run('print("out")\nraise ValueError("boom")\n');

    assert.equal(result.success, false);
    assert.equal(result.return_code, 1);
    assert.match(result.output ?? '', /^out\n/);
    assert.match(result.output ?? '', /Traceback \(most recent call last\)/);
    assert.match(result.output ?? '', /ValueError: boom\n?$/);
  });

  test('a script sleeping past the timeout is killed and ends with the timeout text (BC-04)', async () => {
    const result = await run(
      [
        'import signal, time',
        'signal.signal(signal.SIGTERM, signal.SIG_IGN)',
        'print("started", flush=True)',
        'while True:',
        '    time.sleep(1)',
      ].join('\n'),
    );

    assert.equal(result.success, false);
    assert.equal(result.return_code, -1);
    assert.match(result.output ?? '', /^started\n/);
    assert.ok(result.output?.includes(outputTexts.timeout), result.output ?? '');
    assert.ok(!result.output?.includes(outputTexts.outOfMemory));
    const seconds = (Date.parse(result.finished_at ?? '') - Date.parse(result.started_at)) / 1000;
    // BC-04: finished_at - started_at is about T (within 2 s).
    assert.ok(
      Math.abs(seconds - TIMEOUT_SECONDS) <= 2,
      `ran ${seconds} s for a ${TIMEOUT_SECONDS} s timeout`,
    );
    assert.equal(await containersOfRun(result.id), 0);
  });

  test('a script printing far more than the output limit ends with the output capped (BC-03 A)', async () => {
    const result = await run(
      'import sys\nwhile True:\n    sys.stdout.write("0123456789abcdef\\n")\n',
    );

    const output = result.output ?? '';
    assert.ok(output.startsWith('0123456789abcdef\n0123456789abcdef\n'));
    // The script's part is at most L characters; the timeout text follows (the flood ran on).
    const userPart = output.slice(0, output.lastIndexOf(outputTexts.timeout));
    assert.ok([...userPart].length <= 1_000_001, `${[...userPart].length} characters kept`);
    assert.ok(output.endsWith(outputTexts.timeout), output.slice(-300));
    assert.equal(await containersOfRun(result.id), 0);
  });

  test('one big write of three times the limit comes back as exactly the limit (BC-03 B)', async () => {
    const result = await run('import sys; sys.stdout.write("Z" * 3_000_000); sys.stdout.flush()\n');

    assert.equal(result.success, true);
    assert.equal(result.output, 'Z'.repeat(1_000_000));
  });

  test('the limit counts characters, not bytes (BC-03 C)', async () => {
    const result = await run('print("é" * 600_000, end="")\n');

    assert.equal(result.output, 'é'.repeat(600_000));
  });

  test('invalid UTF-8 becomes U+FFFD and nothing else is lost (BC-01 A)', async () => {
    const result = await run(
      [
        'import sys',
        'sys.stdout.write("before\\n"); sys.stdout.flush()',
        'sys.stdout.buffer.write(b"bad:\\xff\\xfe\\xc3(|end\\n"); sys.stdout.flush()',
        'sys.stderr.buffer.write(b"err:\\xe9t\\xe9\\n"); sys.stderr.flush()',
      ].join('\n'),
    );

    assert.equal(result.success, true);
    const output = result.output ?? '';
    for (const part of ['before\n', 'bad:', '(|end\n', 'err:', '\uFFFD']) {
      assert.ok(output.includes(part), `${JSON.stringify(part)} in ${JSON.stringify(output)}`);
    }
  });

  test('characters split across writes stay intact and emoji round-trip (BC-01 B, C)', async () => {
    const split = await run(
      [
        'import os',
        'data = ("ä€😀" * 50000).encode("utf-8")',
        'i = 0',
        'while i < len(data):',
        '    i += os.write(1, data[i:i+4093])',
      ].join('\n'),
    );
    const emoji = await run('print("emoji 😀 ok")\n');

    assert.equal(split.output, 'ä€😀'.repeat(50_000));
    assert.equal(emoji.output, 'emoji 😀 ok\n');
  });

  test('exact output: no newline at the end, no lost first bytes, empty script (BC-02)', async () => {
    const noNewline = await run('import sys; sys.stdout.write("no-newline-at-end")\n');
    const noEnd = await run('print("QWERTYU", end="")\n');
    const empty = await run('');

    assert.equal(noNewline.output, 'no-newline-at-end');
    assert.equal(noEnd.output, 'QWERTYU');
    assert.equal(empty.output, '');
    assert.equal(empty.success, true);
    assert.equal(empty.return_code, 0);
  });

  test('a memory bomb ends as out of memory, not as a timeout (BC-05 A)', async () => {
    const result = await run(
      'print("allocating", flush=True)\nhog = []\nwhile True:\n    hog.append(bytearray(32 * 1024 * 1024))\n',
    );

    assert.equal(result.success, false);
    assert.equal(result.return_code, 137);
    assert.match(result.output ?? '', /allocating/);
    assert.ok(result.output?.includes(outputTexts.outOfMemory), result.output ?? '');
    assert.ok(!result.output?.includes(outputTexts.timeout));
  });

  test('a child killed for memory while the parent exits 0 is a success (BC-05 B)', async () => {
    const result = await run(
      'import subprocess, sys\nr = subprocess.run([sys.executable, "-c", "x = bytearray(2 * 1024**3)"])\nprint("child rc", r.returncode)\n',
    );

    assert.equal(result.success, true);
    assert.equal(result.return_code, 0);
    assert.match(result.output ?? '', /child rc -9/);
  });

  test('a lingering child does not hold the run open (BC-03 D)', async () => {
    const result = await run(
      'import subprocess\nsubprocess.Popen(["sleep", "300"])\nprint("parent done")\n',
    );

    assert.equal(result.output, 'parent done\n');
    assert.equal(result.success, true);
    assert.equal(await containersOfRun(result.id), 0);
  });

  test('a script that never reads its large context exits normally (BC-09 B)', async () => {
    const result = await run('print("ignored")\n', { context_data: { big: 'x'.repeat(200_000) } });

    assert.equal(result.output, 'ignored\n');
    assert.equal(result.success, true);
  });

  test('no context, or a context that is not an object, gives an empty stdin (BC-09 C)', async () => {
    const none = await run('import sys; print(repr(sys.stdin.read()))\n', { context_data: null });
    const list = await run('import sys; print(repr(sys.stdin.read()))\n', { context_data: ['a'] });

    assert.equal(none.output, "''\n");
    assert.equal(list.output, "''\n");
  });

  test('a read-only root, a bounded /tmp and nothing left of an earlier run (BC-07)', async () => {
    const first = await run(
      [
        'import os',
        'res = {}',
        'for p in ["/home/seatable/x.txt", "/etc/x.txt", "/usr/x.txt"]:',
        '    try:',
        '        open(p, "w").write("x"); res[p] = "WROTE"',
        '    except OSError as e:',
        '        res[p] = e.errno',
        'open("/tmp/ok.txt", "w").write("ok")',
        'try:',
        '    with open("/tmp/fill", "wb") as f:',
        '        while True:',
        '            f.write(b"\\0" * (1 << 20))',
        'except OSError as e:',
        '    res["fill"] = e.errno',
        'os.remove("/tmp/fill")',
        'import pandas',
        'print(sorted(res.items()), os.path.exists("/tmp/ok.txt"), bool(pandas.__version__))',
      ].join('\n'),
    );
    const second = await run('import os; print(sorted(os.listdir("/tmp")))\n');

    assert.equal(first.success, true, first.output ?? '');
    assert.ok(!first.output?.includes('WROTE'), first.output ?? '');
    assert.match(first.output ?? '', /\('fill', 28\)/);
    assert.match(first.output ?? '', /True True\n$/);
    assert.equal(second.output, '[]\n');
  });

  test('a script that does not exist at SeaTable ends with "Fail to get script"', async () => {
    const response = await pipeline.request('/run-script/', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        dtable_uuid: '6a1f3c2e-9b7d-4e21-8f0a-0c5d2b7e9a11',
        script_name: 'missing.py',
        owner: 'user-a@example.invalid',
      }),
    });
    const { script_id: id } = (await response.json()) as { script_id: number };

    const result = await pipeline.waitFinished(id, 'missing.py');

    assert.equal(result.success, false);
    assert.equal(result.output, outputTexts.scriptNotFound);
  });
});
