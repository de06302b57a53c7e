/**
 * The write side: submissions per second through `inject` (token check, validation, append
 * to JetStream, pending row), without a limit, with a limit for one owner (serialised by
 * the owner's lock) and with a limit spread over many owners; then how fast the projector
 * applies a backlog of events. Own nats-server and database; not a test, it prints a table.
 *
 *   node packages/scheduler/bench/admission.bench.ts [submissions] [concurrency] [backlog runs]
 */
import { performance } from 'node:perf_hooks';
import { connect } from '@nats-io/transport-node';
import { encodeEvent, ensureStream, namingFor, subjects } from '@pipeline/events';
import { pino } from 'pino';
import { createTestDatabase } from '../../../test/support/mariadb.ts';
import { startNatsServer } from '../../../test/support/nats.ts';
import { migrateDatabase, openDatabase } from '../src/db/orm.ts';
import { buildApp } from '../src/http/app.ts';
import { RunEventLog } from '../src/messaging/eventLog.ts';
import { RunProjection } from '../src/projection/runProjection.ts';
import { SeaTableClient } from '../src/seatable/seatableClient.ts';
import { RunAdmission } from '../src/submission/runAdmission.ts';

const submissions = Number(process.argv[2] ?? 2000);
const concurrency = Number(process.argv[3] ?? 20);
const backlogRuns = Number(process.argv[4] ?? 2000);
const token = 'bench-token';
const write = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  const nats = await startNatsServer();
  const db = await createTestDatabase('bench_admission');
  const orm = await openDatabase({ ...db, name: db.name });
  await migrateDatabase(orm);
  const connection = await connect({ servers: nats.url });
  const naming = namingFor('bench');
  const eventLog = await RunEventLog.open(connection, naming);
  await ensureStream(eventLog.jetStreamManager, naming);
  const logger = pino({ level: 'silent' });
  const admission = new RunAdmission({
    orm,
    eventLog,
    // Never asked: every submission carries its limit.
    seatable: new SeaTableClient({ serverUrl: 'http://127.0.0.1:9', authToken: token }),
    timeZone: 'Europe/Berlin',
    logger,
  });
  const app = await buildApp({
    authToken: token,
    timeZone: 'Europe/Berlin',
    maxBodyBytes: 1_000_000,
    logger,
    orm,
    admission,
  });

  try {
    write(`| case | submissions | concurrency | per second | p50 ms | p95 ms | peak RSS MB |`);
    write(`| --- | ---: | ---: | ---: | ---: | ---: | ---: |`);
    const cases: [string, (index: number) => Record<string, unknown>][] = [
      ['no limit', () => ({ owner: 'bench@example.invalid', scripts_running_limit: -1 })],
      [
        'limit, one owner',
        () => ({ owner: 'one@example.invalid', scripts_running_limit: 1_000_000 }),
      ],
      [
        'limit, 100 owners',
        (index) => ({
          owner: `owner${index % 100}@example.invalid`,
          scripts_running_limit: 1_000_000,
        }),
      ],
    ];
    for (const [label, fields] of cases) {
      let peakRss = process.memoryUsage().rss;
      const sampler = setInterval(() => {
        peakRss = Math.max(peakRss, process.memoryUsage().rss);
      }, 20);
      const result = await submitMany(app, submissions, concurrency, fields);
      clearInterval(sampler);
      // The bench's own clients run in the same process: the figure bounds the scheduler's.
      write(
        `| ${label} | ${submissions} | ${concurrency} | ${result.perSecond.toFixed(0)} | ${result.p50.toFixed(1)} | ${result.p95.toFixed(1)} | ${(peakRss / 2 ** 20).toFixed(0)} |`,
      );
    }

    const backlog = await appendBacklog(eventLog, backlogRuns);
    const projection = new RunProjection({ orm, eventLog, timeZone: 'Europe/Berlin', logger });
    const started = performance.now();
    projection.start();
    await projection.waitFor(backlog.lastSeq);
    const seconds = (performance.now() - started) / 1000;
    await projection.stop();
    write('');
    write(
      `projector: ${backlog.events + submissions * cases.length} events (${backlog.events} of ${backlogRuns} finished runs) applied from an empty checkpoint in ${seconds.toFixed(2)} s, ${((backlog.events + submissions * cases.length) / seconds).toFixed(0)} events/s`,
    );
  } finally {
    await app.close();
    await connection.close();
    await orm.close(true);
    await db.drop();
    await nats.stop();
  }
}

async function submitMany(
  app: Awaited<ReturnType<typeof buildApp>>,
  count: number,
  parallel: number,
  fields: (index: number) => Record<string, unknown>,
): Promise<{ perSecond: number; p50: number; p95: number }> {
  const latencies: number[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const index = next++;
      const body = {
        dtable_uuid: '6a1f3c2e-9b7d-4e21-8f0a-0c5d2b7e9a11',
        script_name: 'bench.py',
        ...fields(index),
      };
      const started = performance.now();
      const response = await app.inject({
        method: 'POST',
        url: '/run-script/',
        headers: { authorization: `Token ${token}`, 'content-type': 'application/json' },
        payload: JSON.stringify(body),
      });
      latencies.push(performance.now() - started);
      if (response.statusCode !== 200)
        throw new Error(`submission answered ${response.statusCode}: ${response.body}`);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: parallel }, worker));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((left, right) => left - right);
  const at = (fraction: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * fraction))] ?? 0;
  return { perSecond: count / seconds, p50: at(0.5), p95: at(0.95) };
}

/** Requested, claimed, started and finished events of `runs` runs, appended directly. */
async function appendBacklog(
  eventLog: RunEventLog,
  runs: number,
): Promise<{ lastSeq: number; events: number }> {
  const naming = eventLog.naming;
  let lastSeq = 0;
  let events = 0;
  for (let index = 0; index < runs; index++) {
    const now = new Date();
    const request = await eventLog.jetStream.publish(
      subjects.requested(naming),
      encodeEvent({
        type: 'RunRequested',
        schemaVersion: 1,
        occurredAt: now.toISOString(),
        data: {
          dtableUuid: '6a1f3c2e-9b7d-4e21-8f0a-0c5d2b7e9a11',
          scriptName: 'backlog.py',
          owner: `backlog${index % 50}@example.invalid`,
          orgId: index % 3 === 0 ? 7 : -1,
          contextData: null,
          operateFrom: 'manualy',
          operator: null,
        },
      }),
    );
    const runId = request.seq;
    const lifecycle = subjects.lifecycle(naming, runId);
    const base = { schemaVersion: 1 as const, occurredAt: now.toISOString(), runId };
    await eventLog.jetStream.publish(
      lifecycle,
      encodeEvent({ ...base, type: 'RunClaimed', data: { starterId: 'bench', host: 'bench' } }),
    );
    await eventLog.jetStream.publish(
      lifecycle,
      encodeEvent({ ...base, type: 'RunStarted', data: { starterId: 'bench', containerId: 'c' } }),
    );
    const finished = await eventLog.jetStream.publish(
      lifecycle,
      encodeEvent({
        ...base,
        type: 'RunFinished',
        data: {
          success: true,
          returnCode: 0,
          output: 'ok\n',
          outputChunks: 0,
          outputTruncated: false,
          startedAt: now.toISOString(),
          finishedAt: new Date(now.getTime() + 1500).toISOString(),
          durationMs: 1500,
          timedOut: false,
          outOfMemory: false,
          cancelled: false,
          lost: false,
          starterId: 'bench',
        },
      }),
    );
    lastSeq = finished.seq;
    events += 4;
  }
  return { lastSeq, events };
}

await main();
