import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import {
  encodeEvent,
  encodeJson,
  type RunEvent,
  type StatisticsImported,
  subjects,
} from '@pipeline/events';
import Fastify from 'fastify';
import { type EventFilter, EventReader } from '../../src/audit/eventReader.ts';
import { readModelRunIndex } from '../../src/audit/runIndex.ts';
import { runPipelineCommand } from '../../src/cli/commands.ts';
import { auditRoutes } from '../../src/http/auditRoutes.ts';
import { RunProjection } from '../../src/projection/runProjection.ts';
import { append, runClaimed, runFinished, runRequested, runStarted } from '../support/events.ts';
import { baseUuid, type Services, startServices } from '../support/harness.ts';

const timeZone = 'Europe/Berlin';

function projectionOf(services: Services): RunProjection {
  const projection = new RunProjection({
    orm: services.orm,
    eventLog: services.eventLog,
    timeZone,
    logger: services.logger,
  });
  projection.start();
  return projection;
}

/** The environment the scheduler (and so the `pipeline` command) would run with. */
function environmentOf(services: Services): Record<string, string> {
  return {
    PYTHON_SCHEDULER_AUTH_TOKEN: 'audit-test-token',
    SEATABLE_SERVER_URL: services.standin.url,
    NATS_URL: services.nats.url,
    PIPELINE_SUBJECT_PREFIX: services.naming.prefix,
    DB_HOST: services.db.host,
    DB_PORT: String(services.db.port),
    DB_ROOT_USER: services.db.user,
    DB_ROOT_PASSWD: services.db.password,
    DATABASE_NAME: services.db.name,
    TIME_ZONE: timeZone,
    // The history is of April 2026; retention must not take it while the test looks.
    DELETE_LOG_DAYS: '100000',
    DELETE_STATISTICS_DAYS: '100000',
  };
}

async function pipeline(services: Services, ...argv: string[]) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: string[] = [];
  const err: string[] = [];
  stdout.on('data', (chunk: Buffer) => out.push(chunk.toString()));
  stderr.on('data', (chunk: Buffer) => err.push(chunk.toString()));
  const code = await runPipelineCommand(argv, { env: environmentOf(services), stdout, stderr });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

/** Appends the events of one run of each kind the pipeline produces, by `kind`. */
async function mixedRun(services: Services, index: number): Promise<number> {
  const log = services.eventLog;
  const owner = `user-${index % 37}@example.invalid`;
  const orgId = index % 5 === 0 ? -1 : index % 11;
  const requestedAt = new Date(Date.UTC(2026, 3, 1 + (index % 20), index % 24, index % 60));
  const runId = await append(log, runRequested({ owner, orgId }, requestedAt));
  const startedAt = new Date(requestedAt.getTime() + 1000);
  const finishedAt = new Date(startedAt.getTime() + 500 + (index % 17) * 250);
  const kind = index % 6;
  if (kind === 2) {
    await append(log, {
      type: 'RunRejected',
      schemaVersion: 1,
      occurredAt: startedAt.toISOString(),
      runId,
      data: { reason: 'fair_share_exceeded', output: 'Running scripts too frequently' },
    });
    return runId;
  }
  await append(log, runClaimed(runId, `starter-${index % 3}`));
  await append(log, runStarted(runId, startedAt, `starter-${index % 3}`));
  if (kind === 5) {
    for (const chunk of [0, 1]) {
      await append(log, {
        type: 'RunOutputChunk',
        schemaVersion: 1,
        occurredAt: startedAt.toISOString(),
        runId,
        data: { index: chunk, text: `piece ${chunk} of run ${runId} 😀\n` },
      });
    }
  }
  const outcome: Record<number, Parameters<typeof runFinished>[3]> = {
    0: {},
    1: { success: false, returnCode: 1, output: 'Traceback\n' },
    3: { success: false, returnCode: -1, timedOut: true, output: 'timeout' },
    4: { success: false, returnCode: -1, lost: true, output: 'lost' },
    5: { outputChunks: 2, output: 'last piece\n' },
  };
  await append(log, runFinished(runId, startedAt, finishedAt, outcome[kind]));
  return runId;
}

describe('the log as the source of truth', () => {
  let services: Services;
  let projection: RunProjection;
  const runIds: number[] = [];

  before(async () => {
    services = await startServices('audit');
    // An adopted original's statistics come first in the log, as the scheduler writes them.
    await services.eventLog.jetStream.publish(
      subjects.importedStatistics(services.naming, 'user_run_script_statistics', 0),
      encodeEvent(importedStatistics()),
    );
    for (let index = 0; index < 10_000; index += 100) {
      const batch = Array.from({ length: 100 }, (_unused, offset) =>
        mixedRun(services, index + offset),
      );
      runIds.push(...(await Promise.all(batch)));
    }
    for (let imported = 1; imported <= 20; imported++) {
      await append(services.eventLog, importedRun(1_000_000_000 + imported));
    }
    projection = projectionOf(services);
    const { state } = await services.eventLog.jetStreamManager.streams.info(services.naming.stream);
    await projection.waitFor(state.last_seq);
  });

  after(async () => {
    await projection?.stop();
    await services?.close();
  });

  test('rebuild after a mixed history of 10,000 runs and imports reproduces identical tables', async () => {
    await projection.stop();
    const rebuilt = await pipeline(services, 'rebuild');
    assert.equal(rebuilt.code, 0, rebuilt.stderr + rebuilt.stdout);
    assert.match(rebuilt.stdout, /^identical: /m);
    assert.match(rebuilt.stdout, /^swapped: /m);
    assert.match(rebuilt.stderr, /events projected in .* events\/s/);
    const [counted] = await services.db.query<{ runs: number }>(
      'SELECT COUNT(*) AS runs FROM script_log',
    );
    assert.equal(Number(counted?.runs), 10_020);
    const [original] = await services.db.query<{ runs: number }>(
      "SELECT total_run_count AS runs FROM user_run_script_statistics WHERE username = 'original@example.invalid'",
    );
    assert.equal(Number(original?.runs), 5, 'the imported statistics are kept');
  });

  test('rebuild refuses and changes nothing when the read model has runs the log lacks', async () => {
    await services.db.query(
      `INSERT INTO script_log (id, dtable_uuid, owner, org_id, script_name, state)
       VALUES (999999999, '6a1f3c2e-9b7d-4e21-8f0a-0c5d2b7e9a11', 'orphan@example.invalid', -1, 'x.py', 'finished')`,
    );
    const refused = await pipeline(services, 'rebuild');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /1 runs of the read model are not in the log/);
    const [kept] = await services.db.query<{ runs: number }>(
      'SELECT COUNT(*) AS runs FROM script_log WHERE id = 999999999',
    );
    assert.equal(Number(kept?.runs), 1);
    await services.db.query('DELETE FROM script_log WHERE id = 999999999');
  });

  test('rebuild --into compares at the live position while the log has moved on past it', async () => {
    await projection.stop();
    const { state } = await services.eventLog.jetStreamManager.streams.info(services.naming.stream);
    const livePosition = state.last_seq;
    // Events the live tables do not have yet: a scheduler whose projector is a batch behind.
    const runId = await mixedRun(services, 0);
    const scratch = `${services.db.name}_at_position`;
    try {
      const behind = await pipeline(services, 'rebuild', '--into', scratch);
      assert.equal(behind.code, 0, behind.stderr + behind.stdout);
      assert.match(behind.stdout, /^identical: /m);
      assert.match(behind.stderr, new RegExp(`up to sequence ${livePosition}\\n`));
      const [absent] = await services.db.query<{ runs: number }>(
        `SELECT COUNT(*) AS runs FROM \`${scratch}\`.script_log WHERE id = ?`,
        [runId],
      );
      assert.equal(Number(absent?.runs), 0, 'the run after the live position is not rebuilt');

      projection = projectionOf(services);
      const caughtUp = await services.eventLog.jetStreamManager.streams.info(
        services.naming.stream,
      );
      await projection.waitFor(caughtUp.state.last_seq);
      const level = await pipeline(services, 'rebuild', '--into', scratch);
      assert.equal(level.code, 0, level.stderr + level.stdout);
      assert.match(level.stdout, /^identical: /m);
      assert.match(level.stderr, new RegExp(`up to sequence ${caughtUp.state.last_seq}\\n`));
    } finally {
      // The tests below expect a read model that does not follow the log.
      await projection.stop();
      await services.db.query(`DROP DATABASE IF EXISTS \`${scratch}\``);
    }
  });

  test("pipeline events prints a run's events in order with sequence, time and type", async () => {
    const runId = runIds[0] ?? 0;
    const printed = await pipeline(services, 'events', '--run', String(runId));
    assert.equal(printed.code, 0, printed.stderr);
    const lines = printed.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    assert.deepEqual(
      lines.map((line) => line.type),
      ['RunRequested', 'RunClaimed', 'RunStarted', 'RunFinished'],
    );
    assert.equal(lines[0].seq, runId);
    assert.ok(lines.every((line, index) => index === 0 || line.seq > lines[index - 1].seq));
    assert.ok(lines.every((line) => line.runId === runId && !Number.isNaN(Date.parse(line.time))));
  });

  test('pipeline events filters by owner and type across the whole log', async () => {
    const printed = await pipeline(
      services,
      'events',
      '--owner',
      'user-3@example.invalid',
      '--type',
      'RunRequested',
    );
    assert.equal(printed.code, 0, printed.stderr);
    const lines = printed.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    const expected = Array.from({ length: 10_000 }, (_unused, index) => index).filter(
      (index) => index % 37 === 3,
    ).length;
    assert.equal(lines.length, expected);
    assert.ok(lines.every((line) => line.event.data.owner === 'user-3@example.invalid'));
  });

  test('a filter by base, owner or org through the run index gives what a scan of the log gives', async () => {
    // A run the read model has not projected yet: the index does not know it, the log does.
    await mixedRun(services, 3);
    const indexed = new EventReader(services.eventLog, readModelRunIndex(services.orm));
    const scanning = new EventReader(services.eventLog);
    const sequences = async (reader: EventReader, filter: EventFilter) => {
      const found: number[] = [];
      for await (const logged of reader.events(filter)) found.push(logged.seq);
      return found;
    };
    for (const filter of [
      { owner: 'user-3@example.invalid' },
      { orgId: 7, type: 'RunFinished' as const },
      { dtableUuid: baseUuid, owner: 'original@example.invalid' },
      { owner: 'USER-3@example.invalid' },
    ]) {
      const expected = await sequences(scanning, filter);
      assert.deepEqual(await sequences(indexed, filter), expected, JSON.stringify(filter));
    }
    const ownerEvents = await sequences(indexed, { owner: 'user-3@example.invalid' });
    assert.ok(ownerEvents.length > 1000, `${ownerEvents.length} events of user-3`);
  });

  test("the audit endpoints answer a run's events, a filtered page, 404 and 400", async () => {
    const app = Fastify();
    await auditRoutes(app, { eventLog: services.eventLog });
    const runId = runIds[5] ?? 0;
    const run = await app.inject({ url: `/admin/runs/${runId}/events/` });
    assert.equal(run.statusCode, 200);
    assert.deepEqual(
      run.json().events.map((event: { type: string }) => event.type),
      [
        'RunRequested',
        'RunClaimed',
        'RunStarted',
        'RunOutputChunk',
        'RunOutputChunk',
        'RunFinished',
      ],
    );
    assert.equal((await app.inject({ url: '/admin/runs/123456789/events/' })).statusCode, 404);
    assert.equal((await app.inject({ url: '/admin/runs/abc/events/' })).statusCode, 400);
    const page = await app.inject({ url: '/admin/events/?type=RunRejected&limit=10' });
    assert.equal(page.statusCode, 200);
    assert.equal(page.json().events.length, 10);
    assert.equal(page.json().truncated, true);
    for (const query of [
      'limit=0',
      'limit=1001',
      'start=yesterday',
      'org_id=x',
      'type=Nope',
      'base_uuid=zz',
    ]) {
      const refused = await app.inject({ url: `/admin/events/?${query}` });
      assert.equal(refused.statusCode, 400, query);
      assert.equal(typeof refused.json().error, 'string');
    }
    await app.close();
  });

  test('a plain end date includes that whole day in TIME_ZONE, as on the read endpoints', async () => {
    const app = Fastify();
    await auditRoutes(app, { eventLog: services.eventLog, timeZone: 'Europe/Berlin' });
    const stored = await services.eventLog.jetStreamManager.streams.getMessage(
      services.naming.stream,
      { seq: runIds[5] ?? 0 },
    );
    const day = new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Berlin' }).format(
      stored?.time ?? new Date(),
    );
    const dayBefore = new Date(Date.parse(`${day}T12:00:00Z`) - 86_400_000)
      .toISOString()
      .slice(0, 10);

    const sameDay = await app.inject({ url: `/admin/events/?start=${day}&end=${day}&limit=5` });
    const before = await app.inject({ url: `/admin/events/?end=${dayBefore}&limit=5` });

    assert.equal(sameDay.statusCode, 200);
    assert.equal(sameDay.json().events.length, 5);
    assert.equal(before.json().events.length, 0);
    await app.close();
  });
});

describe('a log written by an older version', () => {
  let services: Services;

  before(async () => {
    services = await startServices('auditv0');
  });

  after(async () => {
    await services?.close();
  });

  test('replays into the rows a current log would give', async () => {
    const fixture = await readFile(new URL('../fixtures/log-v0.jsonl', import.meta.url), 'utf8');
    let last = 0;
    for (const line of fixture.trim().split('\n')) {
      const { subject, event } = JSON.parse(line) as { subject: string; event: unknown };
      const ack = await services.eventLog.jetStream.publish(
        `${services.naming.prefix}.${subject}`,
        encodeJson(event),
      );
      last = ack.seq;
    }
    const projection = projectionOf(services);
    await projection.waitFor(last);
    await projection.stop();

    const rows = await services.db.query(
      `SELECT id, state, success, return_code, output, CAST(started_at AS CHAR) AS started_at,
         operate_from FROM script_log ORDER BY id`,
    );
    assert.deepEqual(
      rows.map((row) => ({ ...row })),
      [
        {
          id: 1,
          state: 'finished',
          success: 1,
          return_code: 0,
          output: '42\n',
          started_at: '2025-11-03 09:00:01.000000',
          operate_from: 'automation-rule',
        },
        {
          id: 5,
          state: 'finished',
          success: 0,
          return_code: -1,
          output: 'Fail to get script',
          started_at: null,
          operate_from: 'manualy',
        },
      ],
    );
    const [detail] = await services.db.query<{ duration_ms: number; operator: string | null }>(
      'SELECT duration_ms, operator FROM run_detail WHERE run_id = 1',
    );
    assert.deepEqual({ ...detail }, { duration_ms: 2500, operator: null });
    const days = await services.db.query(
      `SELECT CAST(run_date AS CHAR) AS run_date, total_run_count, total_run_time
       FROM org_run_script_statistics WHERE org_id = 7`,
    );
    assert.deepEqual(
      days.map((day) => ({ ...day })),
      [{ run_date: '2025-11-03', total_run_count: 1, total_run_time: 2.5 }],
    );
  });
});

/** A statistics row of an adopted original, whose runs the log does not have. */
function importedStatistics(): StatisticsImported {
  return {
    type: 'StatisticsImported',
    schemaVersion: 1,
    occurredAt: '2026-06-01T00:00:00.000Z',
    data: {
      table: 'user_run_script_statistics',
      rows: [
        {
          username: 'original@example.invalid',
          run_date: '2025-01-01',
          org_id: 3,
          total_run_count: 5,
          total_run_time: 12.5,
          update_at: '2025-01-01 10:00:02.000000',
        },
      ],
    },
  };
}

function importedRun(runId: number): RunEvent {
  return {
    type: 'RunImported',
    schemaVersion: 2,
    occurredAt: '2026-06-01T00:00:00.000Z',
    runId,
    data: {
      dtableUuid: '6a1f3c2e-9b7d-4e21-8f0a-0c5d2b7e9a11',
      owner: 'original@example.invalid',
      orgId: 3,
      scriptName: 'legacy.py',
      contextData: '{"a": 1}',
      operateFrom: 'manualy',
      state: 'finished',
      success: true,
      returnCode: 0,
      output: 'from the original\n',
      outputChunks: 0,
      createdAt: '2025-01-01T10:00:00.000Z',
      startedAt: '2025-01-01T10:00:01.000Z',
      finishedAt: '2025-01-01T10:00:02.000Z',
    },
  };
}
