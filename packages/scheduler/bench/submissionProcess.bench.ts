/**
 * `POST /run-script/` against a scheduler running as its own process, the way SeaTable
 * talks to it: 16 concurrent HTTP clients on loopback, and the scheduler process's peak
 * resident memory (VmHWM from /proc), so the clients' memory is not counted.
 *
 *   node packages/scheduler/bench/submissionProcess.bench.ts [submissions] [clients]
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { createTestDatabase } from '../../../test/support/mariadb.ts';
import { freePort, startNatsServer } from '../../../test/support/nats.ts';

const submissions = Number(process.argv[2] ?? 20_000);
const clients = Number(process.argv[3] ?? 16);
const token = 'bench-token';

async function residentMegabytes(pid: number): Promise<{ now: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) =>
    Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024;
  return { now: field('VmRSS'), peak: field('VmHWM') };
}

async function waitForPing(url: string): Promise<void> {
  for (let attempt = 0; attempt < 300; attempt++) {
    try {
      const response = await fetch(`${url}/ping/`);
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the scheduler did not answer /ping/');
}

async function main(): Promise<void> {
  const nats = await startNatsServer();
  const db = await createTestDatabase('bench_process');
  const port = await freePort();
  const child = spawn(process.execPath, [join(import.meta.dirname, '..', 'src', 'main.ts')], {
    env: {
      PATH: process.env.PATH ?? '',
      // The flags the scheduler ships with (scripts/start.sh, its Dockerfile);
      // BENCH_SCHEDULER_NODE_OPTIONS compares others ('' for Node's defaults).
      NODE_OPTIONS:
        process.env.BENCH_SCHEDULER_NODE_OPTIONS ??
        '--max-semi-space-size=4 --max-old-space-size=512',
      PYTHON_SCHEDULER_AUTH_TOKEN: token,
      // Never called: no submission asks SeaTable for its limit.
      SEATABLE_SERVER_URL: 'http://127.0.0.1:9',
      NATS_URL: nats.url,
      DB_HOST: db.host,
      DB_PORT: String(db.port),
      DB_USER: db.user,
      DB_PASSWD: db.password,
      DATABASE_NAME: db.name,
      SCHEDULER_PORT: String(port),
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForPing(url);
    const idle = await residentMegabytes(child.pid ?? 0);
    let next = 0;
    const latencies: number[] = [];
    const body = JSON.stringify({
      dtable_uuid: '6a1f3c2e-9b7d-4e21-8f0a-0c5d2b7e9a11',
      script_name: 'bench.py',
      owner: 'bench@example.invalid',
      context_data: { table: 'Table1', row: { _id: 'abc', Name: 'Zoë' } },
    });
    const started = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (next < submissions) {
          next += 1;
          const sent = performance.now();
          const response = await fetch(`${url}/run-script/`, {
            method: 'POST',
            headers: { Authorization: `Token ${token}`, 'Content-Type': 'application/json' },
            body,
          });
          await response.arrayBuffer();
          if (response.status !== 200) throw new Error(`submission answered ${response.status}`);
          latencies.push(performance.now() - sent);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const wrk = await wrkRun(url, body);
    const memory = await residentMegabytes(child.pid ?? 0);
    latencies.sort((left, right) => left - right);
    const at = (share: number) => latencies[Math.floor(share * (latencies.length - 1))] ?? 0;
    process.stdout.write(
      [
        '| submissions | clients | per second | p50 ms | p95 ms | scheduler RSS idle MB | scheduler peak RSS MB |',
        '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
        `| ${submissions} | ${clients} | ${(submissions / seconds).toFixed(0)} | ${at(0.5).toFixed(1)} | ${at(0.95).toFixed(1)} | ${idle.now.toFixed(0)} | ${memory.peak.toFixed(0)} |`,
        '',
        wrk
          ? `wrk (C client, ${clients} connections, 10 s): ${wrk.perSecond.toFixed(0)} submissions/s, all 2xx: ${wrk.allOk}`
          : 'wrk not installed (apt-get install wrk): only the Node client figure above',
        `scheduler peak RSS over both phases: ${memory.peak.toFixed(0)} MB`,
        '',
      ].join('\n'),
    );
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    await db.drop();
    await nats.stop();
  }
}

/** The same submissions from wrk, a client light enough not to take the scheduler's CPU. */
async function wrkRun(
  url: string,
  body: string,
): Promise<{ perSecond: number; allOk: boolean } | null> {
  const run = promisify(execFile);
  const found = await run('sh', ['-c', 'command -v wrk']).catch(() => null);
  if (!found) return null;
  const directory = await mkdtemp(join(tmpdir(), 'bench-wrk-'));
  const script = join(directory, 'post.lua');
  await writeFile(
    script,
    [
      'wrk.method = "POST"',
      `wrk.body = ${JSON.stringify(body)}`,
      `wrk.headers["Authorization"] = "Token ${token}"`,
      'wrk.headers["Content-Type"] = "application/json"',
      '',
    ].join('\n'),
  );
  const { stdout } = await run('wrk', [
    '-t2',
    `-c${clients}`,
    '-d10s',
    '-s',
    script,
    `${url}/run-script/`,
  ]);
  const perSecond = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? 0);
  return { perSecond, allOk: !/Non-2xx/.test(stdout) };
}

await main();
