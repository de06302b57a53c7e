/**
 * The SQLite first run's read model: the projection rate into a SQLite file from a backlog,
 * and the latency of the statistics endpoints over what was projected. The events (a run is
 * a request, a claim, a start and a finish) go into a stream of a nats-server of its own.
 *
 *   node packages/scheduler/bench/sqliteFirstRun.bench.ts [events, default 40000]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { connect } from '@nats-io/transport-node';
import { encodeEvent, ensureStream, messageIdFor, namingFor, subjects } from '@pipeline/events';
import { pino } from 'pino';
import { startNatsServer } from '../../../test/support/nats.ts';
import { migrateDatabase, openDatabase } from '../src/db/orm.ts';
import { buildApp } from '../src/http/app.ts';
import { RunEventLog } from '../src/messaging/eventLog.ts';
import { RunProjection } from '../src/projection/runProjection.ts';
import type { RunAdmission } from '../src/submission/runAdmission.ts';
import { runClaimed, runFinished, runRequested, runStarted } from '../test/support/events.ts';

const events = Number(process.argv[2] ?? 40_000);
const runs = Math.max(1, Math.floor(events / 4));
const requestsPerEndpoint = 200;
const write = (line: string) => process.stdout.write(`${line}\n`);

function percentile(sorted: number[], share: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(share * sorted.length))] ?? 0;
}

async function main(): Promise<void> {
  const nats = await startNatsServer();
  const dir = await mkdtemp(join(tmpdir(), 'pipeline-bench-sqlite-'));
  const orm = await openDatabase({
    sqliteFile: join(dir, 'bench.sqlite'),
    host: '',
    port: 0,
    user: '',
    password: '',
    name: '',
  });
  await migrateDatabase(orm);
  const connection = await connect({ servers: nats.url });
  const naming = namingFor('benchsqlite');
  const eventLog = await RunEventLog.open(connection, naming);
  await ensureStream(eventLog.jetStreamManager, naming);
  const logger = pino({ level: 'warn' }, pino.destination(2));
  try {
    const window = 1000;
    for (let first = 0; first < runs; first += window) {
      const indexes = Array.from({ length: Math.min(window, runs - first) }, (_, i) => first + i);
      const acks = await Promise.all(
        indexes.map((index) =>
          eventLog.jetStream.publish(
            subjects.requested(naming),
            encodeEvent(
              runRequested(
                {
                  dtableUuid: `6a1f3c2e-9b7d-4e21-8f0a-${String(index % 200).padStart(12, '0')}`,
                  owner: `user-${index % 500}@example.invalid`,
                  orgId: index % 3 === 0 ? -1 : index % 20,
                },
                new Date(Date.UTC(2026, 10, 1 + (index % 28), index % 24)),
              ),
            ),
          ),
        ),
      );
      await Promise.all(
        acks.flatMap((ack, offset) => {
          const index = indexes[offset] ?? 0;
          const startedAt = new Date(Date.UTC(2026, 10, 1 + (index % 28), index % 24, 0, 1));
          const finishedAt = new Date(startedAt.getTime() + 1000 + (index % 13) * 100);
          return [
            runClaimed(ack.seq),
            runStarted(ack.seq, startedAt),
            runFinished(ack.seq, startedAt, finishedAt),
          ].map((event) =>
            eventLog.jetStream.publish(subjects.lifecycle(naming, ack.seq), encodeEvent(event), {
              msgID: messageIdFor(ack.seq, event.type),
            }),
          );
        }),
      );
    }
    const { state } = await eventLog.jetStreamManager.streams.info(naming.stream);

    const projectedAt = performance.now();
    const projection = new RunProjection({ orm, eventLog, timeZone: 'Europe/Berlin', logger });
    projection.start();
    await projection.waitFor(state.last_seq);
    await projection.stop();
    const projectionSeconds = (performance.now() - projectedAt) / 1000;

    const app = await buildApp({
      authToken: 'bench',
      timeZone: 'Europe/Berlin',
      maxBodyBytes: 1_000_000,
      logger,
      orm,
      admission: {} as RunAdmission,
    });
    await app.ready();
    const endpoints = [
      '/admin/statistics/by-day/?org_id=7',
      '/admin/statistics/by-base/?org_id=7',
      '/admin/statistics/scripts-running/by-user/?month=2026-11&order_by=-total_run_time',
      '/admin/runs/?org_id=7',
      '/scripts-running-count/?username=user-7@example.invalid&month=2026-11',
    ];
    write('');
    write(
      `SQLite first run: ${state.messages} events (${runs} runs) projected in ${projectionSeconds.toFixed(1)} s, ${Math.round(state.messages / projectionSeconds)} events/s`,
    );
    write(
      '| endpoint                                                                  | p50 ms | p95 ms |',
    );
    write(
      '| ------------------------------------------------------------------------- | ------ | ------ |',
    );
    for (const url of endpoints) {
      const timings: number[] = [];
      for (let request = 0; request < requestsPerEndpoint; request++) {
        const at = performance.now();
        const response = await app.inject({
          method: 'GET',
          url,
          headers: { authorization: 'Token bench' },
        });
        timings.push(performance.now() - at);
        if (response.statusCode !== 200) throw new Error(`${url} answered ${response.statusCode}`);
      }
      timings.sort((a, b) => a - b);
      write(
        `| ${url.padEnd(73)} | ${percentile(timings, 0.5).toFixed(1).padStart(6)} | ${percentile(timings, 0.95).toFixed(1).padStart(6)} |`,
      );
    }
    await app.close();
  } finally {
    await connection.close();
    await orm.close(true);
    await nats.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
