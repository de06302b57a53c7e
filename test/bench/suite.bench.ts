/**
 * The benchmark suite of issue #7: every figure measured side by side in one run on this
 * machine, so that the ratios compare like with like.
 *
 * 1. The engine floor: create, start, wait, remove of the runner image through the Engine
 *    API, running `python3 -c 'print(1)'` (what any container-per-run design pays).
 * 2. Hello world end to end, POST /run-script/ to `finished` visible in GET, with the warm
 *    pool off and on: two pipelines, and rounds of one floor sample, one run on each, so
 *    that a drifting load on the machine hits all three alike. With the pool on, each
 *    sample starts once the pool is full again: the latency a run sees when it arrives at
 *    a starter that is not saturated (the saturated case is figure 3).
 * 3. Sustained runs per second for one starter at its slot count (pool on, default size).
 * 4. Submissions per second: POST /run-script/ answered, 16 clients, no starter.
 *
 * `pnpm bench` runs it (`BENCH_SAMPLES`, default 20 samples per latency figure). It starts
 * its own NATS, database and SeaTable stand-in, and uses the Docker engine of this machine.
 */
import Docker from 'dockerode';
import { baseUuid, type Pipeline, startPipeline, testRunnerImage } from '../support/pipeline.ts';

const samples = Number(process.env.BENCH_SAMPLES ?? 20);
const slots = Number(process.env.BENCH_SLOTS ?? 4);
const sustainedRuns = Number(process.env.BENCH_SUSTAINED_RUNS ?? 60);
const submissions = Number(process.env.BENCH_SUBMISSIONS ?? 2000);
const poolSize = 2;
const docker = new Docker();
const hello = 'print("Hello World")\n';

function percentile(values: number[], share: number): number {
  const sorted = [...values].sort((left, right) => left - right);
  const index = Math.min(sorted.length - 1, Math.ceil(share * sorted.length) - 1);
  return sorted[Math.max(0, index)] ?? Number.NaN;
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

async function engineFloor(count: number): Promise<number[]> {
  const times: number[] = [];
  for (let index = 0; index < count; index++) {
    times.push(
      await timed(async () => {
        const container = await docker.createContainer({
          Image: testRunnerImage,
          Cmd: ['python3', '-c', 'print(1)'],
          HostConfig: { LogConfig: { Type: 'none', Config: {} } },
          Labels: { 'org.seatable.pipeline.bench': 'floor' },
        });
        await container.start();
        await container.wait();
        await container.remove({ force: true });
      }),
    );
  }
  return times;
}

/** GET every 2 ms: the client's poll must not dominate what is measured. */
async function untilFinished(pipeline: Pipeline, id: number, scriptName: string): Promise<void> {
  const query = `dtable_uuid=${baseUuid}&script_name=${encodeURIComponent(scriptName)}`;
  for (;;) {
    const response = await fetch(`${pipeline.url}/run-script/${id}/?${query}`, {
      headers: { Authorization: `Token ${pipeline.token}` },
    });
    if (response.status === 200) {
      const body = (await response.json()) as { script: { state: string; output: string } };
      if (body.script.state === 'finished') {
        if (body.script.output !== 'Hello World\n') {
          throw new Error(`unexpected output ${JSON.stringify(body.script.output)}`);
        }
        return;
      }
    } else {
      await response.arrayBuffer();
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Waits until the starter's pool holds `count` running prepared containers. */
async function poolFull(pipeline: Pipeline, count: number): Promise<void> {
  const starterId = pipeline.starterIds[0] ?? '';
  for (let attempt = 0; attempt < 1000; attempt++) {
    const found = await docker.listContainers({
      filters: {
        label: ['org.seatable.pipeline.pool', `org.seatable.pipeline.starter-id=${starterId}`],
        status: ['running'],
      },
    });
    if (found.length >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('the warm pool did not fill');
}

async function startHello(label: string, pool: number): Promise<Pipeline> {
  const pipeline = await startPipeline({
    label,
    env: { PYTHON_STARTER_POOL_SIZE: String(pool), PYTHON_STARTER_THREAD_COUNT: String(slots) },
  });
  // One run first, so the image and the connections are warm as in steady operation.
  const warm = await pipeline.submit({ script: hello });
  await untilFinished(pipeline, warm.id, warm.scriptName);
  return pipeline;
}

async function helloWorldOnce(pipeline: Pipeline, pool: number, index: number): Promise<number> {
  const scriptName = `hello-${pool}-${index}.py`;
  pipeline.standin.setScript({ dtableUuid: baseUuid, scriptName, source: hello });
  if (pool > 0) await poolFull(pipeline, pool);
  return await timed(async () => {
    const submitted = await pipeline.submit({ script: hello, scriptName });
    await untilFinished(pipeline, submitted.id, scriptName);
  });
}

/**
 * The floor and both latencies, one sample of each in turn: on a machine whose load drifts,
 * each ratio then compares samples taken side by side.
 */
async function interleaved(): Promise<{ floor: number[]; off: number[]; on: number[] }> {
  const off = await startHello('benchpooloff', 0);
  const on = await startHello('benchpoolon', poolSize);
  const times = { floor: [] as number[], off: [] as number[], on: [] as number[] };
  try {
    for (let index = 0; index < samples; index++) {
      times.floor.push(...(await engineFloor(1)));
      times.off.push(await helloWorldOnce(off, 0, index));
      times.on.push(await helloWorldOnce(on, poolSize, index));
    }
    return times;
  } finally {
    await off.stop();
    await on.stop();
  }
}

/** Runs per second with all slots busy: `sustainedRuns` submitted at once, until all ended. */
async function sustainedRate(): Promise<number> {
  const pipeline = await startPipeline({
    label: 'benchsustained',
    env: {
      PYTHON_STARTER_POOL_SIZE: String(poolSize),
      PYTHON_STARTER_THREAD_COUNT: String(slots),
    },
  });
  try {
    const warm = await pipeline.submit({ script: hello });
    await untilFinished(pipeline, warm.id, warm.scriptName);
    await poolFull(pipeline, poolSize);
    const elapsed = await timed(async () => {
      const submitted = await Promise.all(
        Array.from({ length: sustainedRuns }, () => pipeline.submit({ script: hello })),
      );
      for (const run of submitted) await untilFinished(pipeline, run.id, run.scriptName);
    });
    return sustainedRuns / (elapsed / 1000);
  } finally {
    await pipeline.stop();
  }
}

/** POST /run-script/ answered per second, 16 clients at once, no starter taking the runs. */
async function submissionRate(): Promise<number> {
  const pipeline = await startPipeline({ label: 'benchsubmit', starters: 0 });
  try {
    const scriptName = 'submitted.py';
    pipeline.standin.setScript({ dtableUuid: baseUuid, scriptName, source: hello });
    const body = JSON.stringify({
      dtable_uuid: baseUuid,
      script_name: scriptName,
      context_data: null,
      owner: 'user-a@example.invalid',
      org_id: -1,
      scripts_running_limit: -1,
      operate_from: 'manualy',
    });
    const post = async () => {
      const response = await fetch(`${pipeline.url}/run-script/`, {
        method: 'POST',
        headers: { Authorization: `Token ${pipeline.token}`, 'Content-Type': 'application/json' },
        body,
      });
      await response.arrayBuffer();
      if (response.status !== 200) throw new Error(`submission answered ${response.status}`);
    };
    for (let index = 0; index < 50; index++) await post();
    let next = 0;
    const elapsed = await timed(async () => {
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next++ < submissions) await post();
        }),
      );
    });
    return submissions / (elapsed / 1000);
  } finally {
    await pipeline.stop();
  }
}

const latency = await interleaved();
const runsPerSecond = await sustainedRate();
const submissionsPerSecond = await submissionRate();

const floorMedian = percentile(latency.floor, 0.5);
const rows: string[][] = (
  [
    ['engine floor: create+start+wait+remove', latency.floor],
    ['hello world POST → finished in GET, pool off', latency.off],
    [`hello world POST → finished in GET, pool on (size ${poolSize})`, latency.on],
  ] as const
).map(([what, times]) => [
  `${what}, ${times.length} runs`,
  percentile(times, 0.5).toFixed(0),
  percentile(times, 0.95).toFixed(0),
  (percentile(times, 0.5) / floorMedian).toFixed(2),
]);
console.log(
  `runner image ${testRunnerImage}; ${samples} rounds of one floor sample, one run with the pool off and one with it on`,
);
console.log('');
console.log('| what | p50 ms | p95 ms | p50 / engine floor |');
console.log('| --- | ---: | ---: | ---: |');
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
console.log('');
console.log('| throughput | per second | per second × floor |');
console.log('| --- | ---: | ---: |');
console.log(
  `| hello-world runs, one starter at ${slots} slots, ${sustainedRuns} runs at once | ${runsPerSecond.toFixed(1)} | ${((runsPerSecond * floorMedian) / 1000).toFixed(2)} |`,
);
console.log(
  `| submissions answered, POST /run-script/ from 16 clients | ${submissionsPerSecond.toFixed(0)} | ${((submissionsPerSecond * floorMedian) / 1000).toFixed(0)} |`,
);
