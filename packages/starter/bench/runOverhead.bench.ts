/**
 * What the starter adds to a run, against the least a run can cost: the same image, the same
 * create options and the same hand-over driven straight through the Engine API (create,
 * attach, start, write stdin, wait, inspect, remove). The starter runs as a process of its own
 * (`node src/main.ts`, as in production, cold starts: no warm pool); its figure is from
 * publishing RunRequested to RunFinished being in the log, so it includes the claim exchange,
 * the script download and the publishes. Floor and starter runs alternate, `print(1)` each.
 *
 * Run: npm run bench -- runOverhead   (needs Docker, nats-server and the runner image)
 * Target (issue #4): overhead at most 10 % of the floor plus 15 ms, at the median.
 */
import { performance } from 'node:perf_hooks';
import { containerCreateOptions, encodeHandover } from '@pipeline/runner';
import { docker, StarterHarness } from '../test/support/starterHarness.ts';
import { StarterProcess } from './starterProcess.ts';

const rounds = Number(process.env.BENCH_ROUNDS ?? 20);
const script = 'print(1)\n';

function median(values: number[]): number {
  const sorted = [...values].sort((left, right) => left - right);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

async function bareRun(harness: StarterHarness, runId: number): Promise<number> {
  const profile = harness.starterConfig().sandbox;
  const began = performance.now();
  const container = await docker.createContainer(
    containerCreateOptions(profile, { runId, starterId: 'bench-bare' }),
  );
  try {
    const output = (await container.attach({
      stream: true,
      stdout: true,
      stderr: true,
    })) as NodeJS.ReadableStream;
    output.resume();
    const input = (await container.attach({
      stream: true,
      stdin: true,
      hijack: true,
    })) as NodeJS.WritableStream;
    await container.start();
    input.end(
      encodeHandover({
        env: { dtable_web_url: 'http://127.0.0.1:1/', api_token: 'x', is_cloud: '1' },
        script,
      }),
    );
    const exit = (await container.wait()) as { StatusCode: number };
    if (exit.StatusCode !== 0) throw new Error(`bare run exited ${exit.StatusCode}`);
    await container.inspect();
  } finally {
    await container.remove({ force: true });
  }
  return performance.now() - began;
}

async function starterRun(harness: StarterHarness): Promise<number> {
  const began = performance.now();
  const record = await harness.run({ script });
  if (record.output !== '1\n')
    throw new Error(`starter run printed ${JSON.stringify(record.output)}`);
  return performance.now() - began;
}

const harness = new StarterHarness('bench');
await harness.startServices();
const starter = await StarterProcess.start(harness, { PYTHON_STARTER_THREAD_COUNT: '1' });
try {
  // One of each first, so image layers and the network are warm for both.
  await bareRun(harness, 1);
  await starterRun(harness);
  const bare: number[] = [];
  const viaStarter: number[] = [];
  for (let round = 0; round < rounds; round++) {
    bare.push(await bareRun(harness, 100 + round));
    viaStarter.push(await starterRun(harness));
  }
  const floor = median(bare);
  const measured = median(viaStarter);
  const overhead = measured - floor;
  const allowed = floor * 0.1 + 15;
  console.log(`runs of print(1), median of ${rounds}, milliseconds (starter pid ${starter.pid})`);
  console.log(`  engine floor: create/attach/start/wait/remove   ${floor.toFixed(0)}`);
  console.log(`  starter process, RunRequested -> RunFinished   ${measured.toFixed(0)}`);
  console.log(
    `  starter overhead per run                       ${overhead.toFixed(0)} (${((overhead / floor) * 100).toFixed(1)} % of the floor)`,
  );
  console.log(
    `  target: overhead <= ${allowed.toFixed(0)} ms (10 % + 15 ms): ${overhead <= allowed ? 'met' : 'MISSED'}`,
  );
  // Each starter run follows its floor run: their difference is less exposed to the load of
  // the machine drifting than the two medians are.
  const paired = median(viaStarter.map((value, index) => value - (bare[index] ?? value)));
  console.log(`  median of the paired differences               ${paired.toFixed(0)}`);
  console.log(`  (floor: ${bare.map((value) => value.toFixed(0)).join(' ')})`);
  console.log(`  (starter: ${viaStarter.map((value) => value.toFixed(0)).join(' ')})`);
} finally {
  await starter.stop();
  await harness.stop();
}
