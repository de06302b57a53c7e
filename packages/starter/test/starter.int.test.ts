import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { outputTexts } from '@pipeline/events';
import { type RunRecord, StarterHarness } from './support/starterHarness.ts';

/**
 * The starter against the real Docker engine, the offline runner image and a nats-server of
 * its own, with the field cases of /work/shared/cases as inputs. A stand-in scheduler grants
 * every claim; each test reads the run's events back from the log.
 */

const outputLimit = 1_000_000;
const harness = new StarterHarness('int');

before(async () => {
  await harness.start(
    { PYTHON_STARTER_THREAD_COUNT: '4', PYTHON_RUNNER_OUTPUT_LIMIT: String(outputLimit) },
    process.env.STARTER_TEST_LOG,
  );
});

after(async () => {
  await harness.stop();
});

/** A full collection before a memory baseline; node runs tests without --expose-gc. */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

function seconds(record: RunRecord): number {
  const { startedAt, finishedAt } = record.finished.data;
  assert.ok(startedAt, 'the run started');
  return (Date.parse(finishedAt) - Date.parse(startedAt)) / 1000;
}

async function assertNoContainerLeft(record: RunRecord): Promise<void> {
  assert.equal(
    await harness.containersLeft(record.runId),
    0,
    `container of run ${record.runId} left`,
  );
}

describe('output fidelity', { concurrency: 4 }, () => {
  test('BC-01 A: bytes that are not UTF-8 become U+FFFD and nothing else is lost', async () => {
    const record = await harness.run({
      script: [
        'import sys',
        'sys.stdout.write("before\\n"); sys.stdout.flush()',
        'sys.stdout.buffer.write(b"bad:\\xff\\xfe\\xc3(|end\\n"); sys.stdout.flush()',
        'sys.stderr.buffer.write(b"err:\\xe9t\\xe9\\n"); sys.stderr.flush()',
      ].join('\n'),
    });
    assert.equal(record.finished.data.success, true);
    assert.equal(record.finished.data.returnCode, 0);
    // Docker copies stdout and stderr apart, so their relative order is not guaranteed.
    for (const piece of ['before\n', 'bad:\uFFFD\uFFFD\uFFFD(|end\n', 'err:\uFFFDt\uFFFD\n']) {
      assert.ok(
        record.output.includes(piece),
        `${JSON.stringify(piece)} in ${JSON.stringify(record.output)}`,
      );
    }
    assert.equal(record.output.length, 'before\nbad:���(|end\nerr:�t�\n'.length);
    await assertNoContainerLeft(record);
  });

  test('BC-01 B: characters cut by odd-sized writes arrive whole', async () => {
    const record = await harness.run({
      script: [
        'import sys, os',
        'data = ("ä€😀" * 50000).encode("utf-8")',
        'i = 0',
        'while i < len(data):',
        '    i += os.write(1, data[i:i+4093])',
      ].join('\n'),
    });
    assert.equal(record.finished.data.success, true);
    assert.equal(record.output, 'ä€😀'.repeat(50_000));
    assert.equal(record.output.includes('\uFFFD'), false);
    assert.equal(record.finished.data.outputTruncated, false);
  });

  test('BC-01 C: a four-byte emoji round-trips', async () => {
    const record = await harness.run({ script: 'print("emoji 😀 ok")' });
    assert.equal(record.output, 'emoji 😀 ok\n');
  });

  test('BC-02 A: an unterminated last line is kept', async () => {
    const record = await harness.run({
      script: 'import sys; sys.stdout.write("no-newline-at-end")',
    });
    assert.equal(record.output, 'no-newline-at-end');
    assert.equal(record.finished.data.success, true);
    assert.equal(record.finished.data.returnCode, 0);
  });

  test('BC-02 B: the first bytes arrive without frame headers', async () => {
    const record = await harness.run({ script: 'print("QWERTYU", end="")' });
    assert.equal(record.output, 'QWERTYU');
  });

  test('BC-02 C: an uncaught exception fails the run with return code 1 and its traceback', async () => {
    const record = await harness.run({ script: 'print("out")\nraise ValueError("boom")\n' });
    assert.equal(record.finished.data.success, false);
    assert.equal(record.finished.data.returnCode, 1);
    // stdout is block-buffered in a pipe, so "out" may follow the traceback: arrival order.
    assert.ok(record.output.includes('out\n'), record.output);
    assert.match(record.output, /Traceback \(most recent call last\):/);
    assert.match(record.output, /^ValueError: boom$/m);
  });

  test('BC-02 D: the exit status of sys.exit is the return code', async () => {
    const record = await harness.run({ script: 'import sys; print("x"); sys.exit(3)' });
    assert.equal(record.finished.data.success, false);
    assert.equal(record.finished.data.returnCode, 3);
    assert.equal(record.output, 'x\n');
  });

  test('BC-02 E: an empty script succeeds with an empty output', async () => {
    const record = await harness.run({ script: '' });
    assert.equal(record.finished.data.success, true);
    assert.equal(record.finished.data.returnCode, 0);
    assert.equal(record.output, '');
    assert.equal(record.chunks, 0);
  });

  test('gives the script the server URL, token, is_cloud and TZ, and the context on stdin', async () => {
    const record = await harness.run({
      script: [
        'import os, sys, json',
        'print(os.environ["dtable_web_url"], os.environ["api_token"], os.environ["is_cloud"], os.environ["TZ"])',
        'print(json.load(sys.stdin))',
      ].join('\n'),
      contextData: { table: 'Table1', row: { _id: 'r1' } },
    });
    assert.equal(
      record.output,
      "http://127.0.0.1:1/ TEMP-TOKEN 1 Europe/Berlin\n{'table': 'Table1', 'row': {'_id': 'r1'}}\n",
    );
  });

  test('a script that cannot be downloaded ends as "Fail to get script" without starting', async () => {
    const record = await harness.run({ script: 'print(1)', missingScript: true });
    assert.equal(record.finished.data.success, false);
    assert.equal(record.finished.data.returnCode, -1);
    assert.equal(record.output, outputTexts.scriptNotFound);
    assert.equal(record.finished.data.startedAt, null);
    assert.equal(record.started, null);
    assert.equal(record.fetches, 0);
  });
});

describe('output limit', { concurrency: 2 }, () => {
  test('BC-03 B: one write of 3,000,000 characters keeps exactly the first 1,000,000', async () => {
    const record = await harness.run({
      script: 'import sys; sys.stdout.write("Z" * 3_000_000); sys.stdout.flush()',
    });
    assert.equal(record.finished.data.success, true);
    assert.equal(record.finished.data.returnCode, 0);
    // Exactly the first L characters; the run's flag says the rest was dropped.
    assert.equal(record.output, 'Z'.repeat(outputLimit));
    assert.equal(record.finished.data.outputTruncated, true);
    assert.ok(record.chunks >= 3, `long output goes in chunks, got ${record.chunks}`);
  });

  test('BC-03 C: the limit counts characters, so 600,000 é (1.2 MB) are kept whole', async () => {
    const record = await harness.run({ script: 'print("é" * 600_000, end="")' });
    assert.equal(record.output, 'é'.repeat(600_000));
    assert.equal(record.finished.data.outputTruncated, false);
  });
});

describe('processes and deadlines', { concurrency: 4 }, () => {
  test('BC-03 D: a child holding stdout open does not hold up the run', async () => {
    const record = await harness.run({
      script: 'import subprocess\nsubprocess.Popen(["sleep", "300"])\nprint("parent done")\n',
    });
    assert.equal(record.finished.data.success, true);
    assert.equal(record.output, 'parent done\n');
    assert.ok(seconds(record) < 5, `took ${seconds(record)} s`);
    await assertNoContainerLeft(record);
  });

  test('BC-04: a script that ignores SIGTERM is killed at the timeout and keeps its flushed output', async () => {
    const timeoutSeconds = 3;
    const record = await harness.run({
      timeoutSeconds,
      script: [
        'import signal, time',
        'signal.signal(signal.SIGTERM, signal.SIG_IGN)',
        'print("started", flush=True)',
        'print("unflushed-tail")',
        'while True:',
        '    time.sleep(1)',
      ].join('\n'),
    });
    const data = record.finished.data;
    assert.equal(data.success, false);
    assert.equal(data.returnCode, -1);
    assert.equal(data.timedOut, true);
    assert.equal(data.outOfMemory, false);
    assert.ok(record.output.startsWith('started\n'), record.output);
    assert.ok(record.output.endsWith(outputTexts.timeout), record.output);
    assert.equal(record.output.includes(outputTexts.outOfMemory), false);
    assert.ok(Math.abs(seconds(record) - timeoutSeconds) <= 2, `ran ${seconds(record)} s`);
    await assertNoContainerLeft(record);
  });

  test('BC-05 A: running out of memory ends with return code 137 and the OOM line', async () => {
    const record = await harness.run({
      script: [
        'print("allocating", flush=True)',
        'hog = []',
        'while True:',
        '    hog.append(bytearray(32 * 1024 * 1024))',
      ].join('\n'),
    });
    const data = record.finished.data;
    assert.equal(data.success, false);
    assert.equal(data.returnCode, 137);
    assert.equal(data.outOfMemory, true);
    assert.ok(record.output.startsWith('allocating\n'), record.output);
    assert.ok(record.output.trimEnd().endsWith(outputTexts.outOfMemory), record.output);
    assert.equal(record.output.includes(outputTexts.timeout), false);
    assert.ok(seconds(record) < 8, `took ${seconds(record)} s`);
    await assertNoContainerLeft(record);
  });

  test('BC-05 B: a child killed for memory does not fail a script that exits 0', async () => {
    const record = await harness.run({
      script: [
        'import subprocess, sys',
        'r = subprocess.run([sys.executable, "-c", "x = bytearray(2 * 1024**3)"])',
        'print("child rc", r.returncode)',
      ].join('\n'),
    });
    assert.equal(record.finished.data.success, true);
    assert.equal(record.finished.data.returnCode, 0);
    assert.equal(record.finished.data.outOfMemory, false);
    assert.ok(record.output.includes('child rc -9'), record.output);
    await assertNoContainerLeft(record);
  });

  test('keeps no secret in the container configuration while the script runs', async () => {
    const { runId, finished } = await harness.submit({
      script: 'import time\nprint("waiting", flush=True)\ntime.sleep(3)\n',
    });
    let inspected = '';
    for (let attempt = 0; attempt < 100 && inspected === ''; attempt++) {
      const containers = await harness.containers(runId);
      // A container listed can be gone by its inspect (seen once in CI, cause unknown): look
      // again; the output below still says whether the run went through its container.
      const info = await containers[0]?.inspect().catch((error: { statusCode?: number }) => {
        if (error.statusCode === 404) return undefined;
        throw error;
      });
      if (info) inspected = JSON.stringify(info);
      else await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.notEqual(inspected, '', 'the container was seen');
    assert.equal(inspected.includes('TEMP-TOKEN'), false);
    assert.ok(inspected.includes('"ReadonlyRootfs":true'));
    assert.ok(inspected.includes('"no-new-privileges:true"'));
    assert.equal((await finished).output, 'waiting\n');
  });
});

describe('filesystem sandbox', () => {
  test('BC-07: the root is read-only, /tmp is a capped tmpfs, and the next run sees none of it', async () => {
    const first = await harness.run({
      script: [
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
    });
    assert.equal(first.finished.data.success, true, first.output);
    assert.ok(first.output.endsWith('True True\n'), first.output);
    assert.equal(first.output.includes('WROTE'), false);
    assert.match(first.output, /\('fill', 28\)/);
    for (const path of ['/etc/x.txt', '/home/seatable/x.txt', '/usr/x.txt']) {
      assert.match(first.output, new RegExp(`\\('${path}', (30|13)\\)`));
    }
    assert.ok(seconds(first) < 10, `took ${seconds(first)} s`);

    const second = await harness.run({ script: 'import os; print(sorted(os.listdir("/tmp")))' });
    assert.equal(second.finished.data.success, true);
    assert.equal(second.output, '[]\n');
  });
});

describe('context data on standard input', { concurrency: 3 }, () => {
  const big = 'x'.repeat(200_000);

  test('BC-09 A: Unicode and a 200 KB context reach the script intact', async () => {
    const record = await harness.run({
      contextData: { row: { Name: 'Zoë 😀 \u2028 "q"', n: 1 }, big },
      script: [
        'import sys, json',
        'raw = sys.stdin.buffer.read()',
        'd = json.loads(raw.decode("utf-8"))',
        'print(d["row"]["Name"] == "Zo\\u00eb \\U0001F600 \\u2028 \\"q\\"", d["row"]["n"], len(d["big"]))',
      ].join('\n'),
    });
    assert.equal(record.output, 'True 1 200000\n');
    assert.equal(record.finished.data.success, true);
  });

  test('BC-09 B: a script that never reads a 200 KB context still succeeds', async () => {
    const record = await harness.run({ contextData: { big }, script: 'print("ignored")' });
    assert.equal(record.output, 'ignored\n');
    assert.equal(record.finished.data.success, true);
  });

  test('BC-09 C: without context data the script reads an empty stdin', async () => {
    const record = await harness.run({
      contextData: null,
      script: 'import sys; print(repr(sys.stdin.read()))',
    });
    assert.equal(record.output, "''\n");
  });
});

describe('output flood', () => {
  test('BC-03 A: an endless printer is capped at the limit, timed out, and costs the starter little memory', async () => {
    const timeoutSeconds = 3;
    const graceSeconds = 2;
    collectGarbage();
    const baseline = process.memoryUsage().rss;
    const samples: Array<{ at: number; rss: number }> = [];
    const sampler = setInterval(() => {
      samples.push({ at: Date.now(), rss: process.memoryUsage().rss });
    }, 20);
    const { finished } = await harness.submit({
      timeoutSeconds,
      script: 'import sys\nwhile True:\n    sys.stdout.write("0123456789abcdef\\n")\n',
    });
    let record: RunRecord;
    try {
      record = await finished;
    } finally {
      clearInterval(sampler);
    }
    const data = record.finished.data;
    // What the script printed (the first L characters), then the timeout text on its line.
    assert.ok(record.output.startsWith('0123456789abcdef\n0123456789abcdef\n'));
    assert.ok(record.output.endsWith(outputTexts.timeout));
    // Less the line break that puts the timeout text on a line of its own.
    const printed = record.output
      .slice(0, record.output.lastIndexOf(outputTexts.timeout))
      .replace(/\n$/, '');
    assert.ok([...printed].length <= outputLimit, `kept ${[...printed].length} characters`);
    assert.equal(data.outputTruncated, true);
    assert.equal(data.timedOut, true);
    assert.ok(seconds(record) <= timeoutSeconds + graceSeconds + 5);

    // The container printed until it was killed, at the deadline plus the stop grace.
    const killedAt = Date.parse(data.startedAt ?? '') + (timeoutSeconds + graceSeconds) * 1000;
    const peak = (until: number) =>
      Math.max(baseline, ...samples.filter((sample) => sample.at <= until).map((s) => s.rss));
    const duringRun = peak(killedAt) - baseline;
    const withPublishing = peak(Number.POSITIVE_INFINITY) - baseline;
    console.log(
      `BC-03 A: starter RSS grew by ${(duringRun / 1e6).toFixed(1)} MB while the flood ran, ` +
        `${(withPublishing / 1e6).toFixed(1)} MB including publishing the capped output`,
    );
    // BC-03 asks for less than 4 × L. This process also holds the test's NATS clients and
    // harness, whose heap moves by several MB on its own under GC, so the bound here adds
    // 16 MB of that noise: a starter that kept what the flood printed (gigabytes in 10 s)
    // would still fail by far. The starter's own process is measured by
    // bench/peakMemory.bench.ts (ten floods at once, its peak resident memory).
    const noiseBytes = 16 * 1024 * 1024;
    assert.ok(
      duringRun < 4 * outputLimit + noiseBytes,
      `RSS grew by ${duringRun} bytes during the run`,
    );
    await assertNoContainerLeft(record);
  });
});

describe('cleanup', () => {
  test('leaves no container of this starter behind', async () => {
    assert.equal(await harness.containersLeft(), 0);
  });
});
