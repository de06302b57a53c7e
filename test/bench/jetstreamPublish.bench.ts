/**
 * What an acknowledged event costs: publishes run events into a throw-away file stream the way
 * the pipeline does (one awaited publish with a Nats-Msg-Id at a time, and 16 at once) and
 * prints the rate and the acknowledgement latency. Not a test: it prints a table.
 *
 *   node test/bench/jetstreamPublish.bench.ts [events] [replicas]
 *
 * By default it starts its own nats-server (Debian's 2.9: no sync_interval, JetStream flushes
 * to disk every two minutes). BENCH_NATS_URL (with BENCH_NATS_USER and BENCH_NATS_PASSWORD)
 * measures another server instead, for example a 2.12 cluster with `sync_interval: always`
 * and replicas 3, to see what that setting costs there; run it once with and once without.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { namingFor, streamConfig } from '@pipeline/events';
import { freePort } from '../support/nats.ts';

const eventCount = Number(process.argv[2] ?? 5_000);
const replicas = Number(process.argv[3] ?? 1);
const concurrency = 16;
const write = (line: string) => process.stdout.write(`${line}\n`);

// A RunFinished-sized event: ids, times, a short output.
const payload = JSON.stringify({
  type: 'RunFinished',
  schemaVersion: 1,
  occurredAt: '2026-12-04T12:00:00.000Z',
  runId: 1,
  data: { success: true, returnCode: 0, output: 'x'.repeat(300), startedAt: null },
});

function percentile(sorted: number[], share: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * share))] ?? Number.NaN;
}

/** A nats-server of the bench's own; its settings in a file, as 2.9 takes max_payload only there. */
async function startOwnServer(): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const directory = await mkdtemp(join(tmpdir(), 'pipeline-bench-nats-'));
  const configFile = join(directory, 'nats.conf');
  await writeFile(
    configFile,
    `listen: 127.0.0.1:${port}\nmax_payload: 8MB\njetstream { store_dir: "${directory}/js" }\n`,
  );
  const child = spawn(process.env.NATS_SERVER_BIN ?? 'nats-server', ['-c', configFile], {
    stdio: 'ignore',
  });
  const url = `nats://127.0.0.1:${port}`;
  for (let attempt = 0; ; attempt++) {
    const reachable = await connect({ servers: url, reconnect: false }).then(
      (probe) => probe.close().then(() => true),
      () => false,
    );
    if (reachable) break;
    if (attempt > 200 || child.exitCode !== null) throw new Error('nats-server did not start');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return {
    url,
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      await rm(directory, { recursive: true, force: true });
    },
  };
}

async function main(): Promise<void> {
  const ownServer = process.env.BENCH_NATS_URL ? null : await startOwnServer();
  const servers = process.env.BENCH_NATS_URL ?? ownServer!.url;
  const nc = await connect({
    servers,
    user: process.env.BENCH_NATS_USER,
    pass: process.env.BENCH_NATS_PASSWORD,
  });
  const manager = await jetstreamManager(nc);
  const naming = namingFor(`bench_${process.pid}`);
  await manager.streams.add({
    ...streamConfig(naming, {
      maxAgeSeconds: 0,
      maxBytes: -1,
      replicas,
      duplicateWindowSeconds: 120,
    }),
  });
  const js = jetstream(nc);
  const serverVersion = nc.info?.version ?? 'unknown';

  try {
    write(`server ${serverVersion} at ${servers}, replicas ${replicas}, ${eventCount} events`);
    write('mode          events/s   ack p50 ms   ack p99 ms');
    for (const parallel of [1, concurrency]) {
      const latencies: number[] = [];
      let next = 0;
      const began = performance.now();
      const worker = async () => {
        for (let index = next++; index < eventCount; index = next++) {
          const sent = performance.now();
          await js.publish(`${naming.prefix}.runs.run.${index + 1}`, payload, {
            msgID: `run-${index + 1}-RunFinished-${parallel}`,
          });
          latencies.push(performance.now() - sent);
        }
      };
      await Promise.all(Array.from({ length: parallel }, worker));
      const seconds = (performance.now() - began) / 1000;
      latencies.sort((left, right) => left - right);
      const mode = parallel === 1 ? 'one at a time' : `${parallel} at once`;
      write(
        `${mode.padEnd(13)} ${(eventCount / seconds).toFixed(0).padStart(8)}   ${percentile(latencies, 0.5).toFixed(2).padStart(10)}   ${percentile(latencies, 0.99).toFixed(2).padStart(10)}`,
      );
    }
  } finally {
    await manager.streams.delete(naming.stream);
    await nc.close();
    await ownServer?.stop();
  }
}

await main();
