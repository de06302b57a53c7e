/**
 * The projection rate: events per second into MariaDB while the projector follows a backlog
 * in the live read model, and during `rebuild` (the whole log again into a second schema),
 * with the rebuild's time. The events (requests, claims, starts, finishes; a run is four
 * events) are generated straight into a stream of a nats-server of its own.
 *
 * The million-event profile (the rebuild target: under two minutes) takes several minutes:
 *
 *   BENCH_PROJECTION_EVENTS=1000000 npm run bench -- projection
 *   node packages/scheduler/bench/projection.bench.ts [events, default 200000]
 */
import { performance } from 'node:perf_hooks';
import { connect } from '@nats-io/transport-node';
import {
  encodeEvent,
  ensureStream,
  messageIdFor,
  namingFor,
  type RunEvent,
  subjects,
} from '@pipeline/events';
import { pino } from 'pino';
import { createTestDatabase } from '../../../test/support/mariadb.ts';
import { startNatsServer } from '../../../test/support/nats.ts';
import { rebuildReadModel } from '../src/audit/rebuild.ts';
import { migrateDatabase, openDatabase } from '../src/db/orm.ts';
import { RunEventLog } from '../src/messaging/eventLog.ts';
import { RunProjection } from '../src/projection/runProjection.ts';

const events = Number(process.argv[2] ?? process.env.BENCH_PROJECTION_EVENTS ?? 200_000);
const runs = Math.max(1, Math.floor(events / 4));
/** Generous: on a busy machine a window of publishes can take longer than the default 5 s. */
const publishTimeoutMs = 60_000;
const write = (line: string) => process.stdout.write(`${line}\n`);

function runEvents(runId: number, index: number): RunEvent[] {
  const requestedAt = new Date(Date.UTC(2026, 10, 1 + (index % 28), index % 24));
  const startedAt = new Date(requestedAt.getTime() + 1000);
  const finishedAt = new Date(startedAt.getTime() + 1000 + (index % 13) * 100);
  const at = (date: Date) => date.toISOString();
  return [
    {
      type: 'RunClaimed',
      schemaVersion: 1,
      occurredAt: at(startedAt),
      runId,
      data: { starterId: `starter-${index % 4}`, host: 'bench' },
    },
    {
      type: 'RunStarted',
      schemaVersion: 1,
      occurredAt: at(startedAt),
      runId,
      data: { starterId: `starter-${index % 4}`, containerId: `c${runId}` },
    },
    {
      type: 'RunFinished',
      schemaVersion: 1,
      occurredAt: at(finishedAt),
      runId,
      data: {
        success: index % 7 !== 0,
        returnCode: index % 7 === 0 ? 1 : 0,
        output: `run ${runId}\n`,
        outputChunks: 0,
        outputTruncated: false,
        startedAt: at(startedAt),
        finishedAt: at(finishedAt),
        durationMs: finishedAt.getTime() - startedAt.getTime(),
        timedOut: false,
        outOfMemory: false,
        cancelled: false,
        lost: false,
        starterId: `starter-${index % 4}`,
      },
    },
  ];
}

async function main(): Promise<void> {
  const nats = await startNatsServer();
  const db = await createTestDatabase('bench_projection');
  const settings = { ...db, name: db.name };
  const orm = await openDatabase(settings);
  await migrateDatabase(orm);
  const connection = await connect({ servers: nats.url });
  const naming = namingFor('benchproj');
  const eventLog = await RunEventLog.open(connection, naming);
  await ensureStream(eventLog.jetStreamManager, naming);
  const logger = pino({ level: 'warn' }, pino.destination(2));
  try {
    // Requests first, in windows of concurrent publishes (a request's sequence is its run id).
    const generatedAt = performance.now();
    const window = 1000;
    for (let first = 0; first < runs; first += window) {
      const count = Math.min(window, runs - first);
      const requests = Array.from({ length: count }, (_unused, offset) => {
        const index = first + offset;
        const event: RunEvent = {
          type: 'RunRequested',
          schemaVersion: 1,
          occurredAt: new Date(Date.UTC(2026, 10, 1 + (index % 28), index % 24)).toISOString(),
          data: {
            dtableUuid: `6a1f3c2e-9b7d-4e21-8f0a-${String(index % 500).padStart(12, '0')}`,
            scriptName: 'bench.py',
            owner: `user-${index % 2000}@example.invalid`,
            orgId: index % 3 === 0 ? -1 : index % 50,
            contextData: null,
            operateFrom: 'manualy',
            operator: null,
          },
        };
        return eventLog.jetStream.publish(subjects.requested(naming), encodeEvent(event), {
          timeout: publishTimeoutMs,
        });
      });
      const acks = await Promise.all(requests);
      await Promise.all(
        acks.flatMap((ack, offset) =>
          runEvents(ack.seq, first + offset).map((event) =>
            eventLog.jetStream.publish(subjects.lifecycle(naming, ack.seq), encodeEvent(event), {
              msgID: messageIdFor(ack.seq, event.type),
              timeout: publishTimeoutMs,
            }),
          ),
        ),
      );
    }
    const { state } = await eventLog.jetStreamManager.streams.info(naming.stream);
    const generatedSeconds = (performance.now() - generatedAt) / 1000;

    const liveAt = performance.now();
    const projection = new RunProjection({ orm, eventLog, timeZone: 'Europe/Berlin', logger });
    projection.start();
    await projection.waitFor(state.last_seq);
    await projection.stop();
    const liveSeconds = (performance.now() - liveAt) / 1000;

    const report = await rebuildReadModel(
      {
        orm,
        database: settings,
        eventLog,
        timeZone: 'Europe/Berlin',
        retention: { logDays: 100_000, statisticsDays: 100_000 },
        logger,
      },
      { into: `${db.name}_rb`, swap: false, force: false },
    );
    await orm.em.getConnection().execute(`DROP DATABASE IF EXISTS \`${db.name}_rb\``);

    write('');
    write(
      `projection of ${state.messages} events (${runs} runs; generated in ${generatedSeconds.toFixed(1)} s)`,
    );
    write('| phase                         | events    | seconds | events/s |');
    write('| ----------------------------- | --------- | ------- | -------- |');
    const row = (phase: string, count: number, seconds: number) =>
      write(
        `| ${phase.padEnd(29)} | ${String(count).padStart(9)} | ${seconds.toFixed(1).padStart(7)} | ${String(Math.round(count / seconds)).padStart(8)} |`,
      );
    row('live (backlog into live DB)', state.messages, liveSeconds);
    row('rebuild (into second schema)', report.events, report.seconds);
    write(
      `rebuilt tables identical: ${report.differing.length === 0 ? 'yes' : `no (${report.differing.join(', ')})`}`,
    );
    write('targets: >= 10,000 events/s; 1,000,000 events rebuilt in < 120 s');
    if (state.messages < 1_000_000) {
      write(
        '(the million-event rebuild: BENCH_PROJECTION_EVENTS=1000000 npm run bench -- projection)',
      );
    }
  } finally {
    await connection.close();
    await orm.close(true);
    await db.drop();
    await nats.stop();
  }
}

await main();
