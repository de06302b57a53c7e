/**
 * `POST /run-script/` against a scheduler running as its own process, the way SeaTable
 * talks to it: 16 concurrent HTTP clients on loopback, and the scheduler process's peak
 * resident memory (VmHWM from /proc), so the clients' memory is not counted.
 *
 *   node packages/scheduler/bench/submissionProcess.bench.ts [submissions] [clients]
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
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
    const memory = await residentMegabytes(child.pid ?? 0);
    latencies.sort((left, right) => left - right);
    const at = (share: number) => latencies[Math.floor(share * (latencies.length - 1))] ?? 0;
    process.stdout.write(
      [
        '| submissions | clients | per second | p50 ms | p95 ms | scheduler RSS idle MB | scheduler peak RSS MB |',
        '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
        `| ${submissions} | ${clients} | ${(submissions / seconds).toFixed(0)} | ${at(0.5).toFixed(1)} | ${at(0.95).toFixed(1)} | ${idle.now.toFixed(0)} | ${memory.peak.toFixed(0)} |`,
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

await main();
