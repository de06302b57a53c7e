/**
 * End-to-end latency of a hello-world run beside the container floor, measured in one run
 * on this machine (issue #2's closing figure, the start of issue #7's table):
 *
 * - `docker run --rm <image> python3 -c 'print(1)'` through the CLI (median of 10);
 * - the engine floor: create, start, wait, remove of the same image through the Engine API;
 * - POST /run-script/ → `finished` visible in GET /run-script/<id>/, median and p95 of 20,
 *   through the whole pipeline (scheduler, NATS, starter, Docker, projector, MariaDB).
 *
 * Run with `pnpm bench hello`. It starts its own NATS, database and SeaTable stand-in.
 */
import { execFileSync } from 'node:child_process';
import Docker from 'dockerode';
import { startPipeline, testRunnerImage } from '../support/pipeline.ts';

const samples = Number(process.env.BENCH_SAMPLES ?? 20);

function percentile(values: number[], share: number): number {
  const sorted = [...values].sort((left, right) => left - right);
  const index = Math.min(sorted.length - 1, Math.ceil(share * sorted.length) - 1);
  return sorted[Math.max(0, index)] ?? Number.NaN;
}

async function timed(work: () => Promise<unknown> | unknown): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

async function dockerCliRuns(count: number): Promise<number[]> {
  const times: number[] = [];
  for (let index = 0; index < count; index++) {
    times.push(
      await timed(() =>
        execFileSync('docker', ['run', '--rm', testRunnerImage, 'python3', '-c', 'print(1)'], {
          stdio: 'ignore',
        }),
      ),
    );
  }
  return times;
}

async function engineFloor(count: number): Promise<number[]> {
  const docker = new Docker();
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

async function pipelineRuns(count: number): Promise<number[]> {
  const pipeline = await startPipeline({ label: 'benchhello' });
  try {
    // One run first, so the image and the connections are warm as in steady operation.
    const warm = await pipeline.submit({ script: 'print("Hello World")\n' });
    await pipeline.waitFinished(warm.id, warm.scriptName);
    const times: number[] = [];
    for (let index = 0; index < count; index++) {
      const scriptName = `hello-${index}.py`;
      pipeline.standin.setScript({
        dtableUuid: '6a1f3c2e-9b7d-4e21-8f0a-0c5d2b7e9a11',
        scriptName,
        source: 'print("Hello World")\n',
      });
      times.push(
        await timed(async () => {
          const submitted = await pipeline.submit({ script: 'print("Hello World")\n', scriptName });
          await pollFinished(pipeline.url, pipeline.token, submitted.id, scriptName);
        }),
      );
    }
    return times;
  } finally {
    await pipeline.stop();
  }
}

/** GET every 5 ms: the poll interval must not dominate what is measured. */
async function pollFinished(url: string, token: string, id: number, scriptName: string) {
  const query = `dtable_uuid=6a1f3c2e-9b7d-4e21-8f0a-0c5d2b7e9a11&script_name=${encodeURIComponent(scriptName)}`;
  for (;;) {
    const response = await fetch(`${url}/run-script/${id}/?${query}`, {
      headers: { Authorization: `Token ${token}` },
    });
    if (response.status === 200) {
      const body = (await response.json()) as { script: { state: string; output: string } };
      if (body.script.state === 'finished') {
        if (body.script.output !== 'Hello World\n')
          throw new Error(`unexpected output ${body.script.output}`);
        return;
      }
    } else {
      await response.arrayBuffer();
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const cli = await dockerCliRuns(10);
const floor = await engineFloor(10);
const endToEnd = await pipelineRuns(samples);
const floorMedian = percentile(floor, 0.5);

const rows: [string, number, number][] = [
  ['docker run --rm (CLI), 10 runs', percentile(cli, 0.5), percentile(cli, 0.95)],
  ['engine floor: create+start+wait+remove, 10 runs', floorMedian, percentile(floor, 0.95)],
  [
    `hello world POST → finished in GET, ${samples} runs`,
    percentile(endToEnd, 0.5),
    percentile(endToEnd, 0.95),
  ],
];
console.log(`runner image ${testRunnerImage}`);
console.log('| what | p50 ms | p95 ms | p50 / engine floor |');
console.log('| --- | ---: | ---: | ---: |');
for (const [what, median, p95] of rows) {
  console.log(
    `| ${what} | ${median.toFixed(0)} | ${p95.toFixed(0)} | ${(median / floorMedian).toFixed(2)} |`,
  );
}
