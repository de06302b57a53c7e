import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { subjects } from '@pipeline/events';
import { pino } from 'pino';
import { openDatabase } from '../src/db/orm.ts';
import { RunProjection } from '../src/projection/runProjection.ts';
import { append, runClaimed, runFinished, runRequested, runStarted } from './support/events.ts';
import { baseUuid, type Services, startServices } from './support/harness.ts';

const timeZone = 'Europe/Berlin';
let services: Services;
let projection: RunProjection;
const warnings: { msg: string; runId?: number }[] = [];

function recordingLogger() {
  return pino(
    { level: 'warn' },
    {
      write(line: string) {
        warnings.push(JSON.parse(line));
      },
    },
  );
}

function startProjection(): RunProjection {
  const started = new RunProjection({
    orm: services.orm,
    eventLog: services.eventLog,
    timeZone,
    logger: recordingLogger(),
  });
  started.start();
  return started;
}

before(async () => {
  services = await startServices('projection');
  projection = startProjection();
});

after(async () => {
  await projection?.stop();
  await services?.close();
});

interface LogRow {
  state: string;
  success: number | null;
  return_code: number | null;
  output: string | null;
  started_at: string | null;
  finished_at: string | null;
  owner: string;
}

async function runRow(id: number): Promise<LogRow | undefined> {
  const [row] = await services.db.query<LogRow>(
    `SELECT state, success, return_code, output, owner,
       CAST(started_at AS CHAR) AS started_at, CAST(finished_at AS CHAR) AS finished_at
     FROM script_log WHERE id = ?`,
    [id],
  );
  return row;
}

async function statistics(table: string, keyColumn: string, key: unknown) {
  return await services.db.query<{
    run_date: string;
    total_run_count: number;
    total_run_time: number;
  }>(
    `SELECT CAST(run_date AS CHAR) AS run_date, total_run_count, total_run_time FROM ${table}
     WHERE ${keyColumn} = ? ORDER BY run_date`,
    [key],
  );
}

/** Appends a run that ran from `startedAt` to `finishedAt`; returns its id. */
async function completedRun(
  owner: string,
  startedAt: Date,
  finishedAt: Date,
  orgId = -1,
  dtableUuid = baseUuid,
) {
  const runId = await append(services.eventLog, runRequested({ owner, orgId, dtableUuid }));
  await append(services.eventLog, runClaimed(runId));
  await append(services.eventLog, runStarted(runId, startedAt));
  const last = await append(services.eventLog, runFinished(runId, startedAt, finishedAt));
  return { runId, last };
}

describe('run projection', () => {
  test('moves a run through pending, running and finished as its events arrive', async () => {
    const requestedSeq = await append(
      services.eventLog,
      runRequested({ owner: 'flow@example.invalid', operator: 'op@example.invalid' }),
    );
    await projection.waitFor(requestedSeq);
    assert.equal((await runRow(requestedSeq))?.state, 'pending');

    await append(services.eventLog, runClaimed(requestedSeq, 'starter-flow'));
    const startedSeq = await append(
      services.eventLog,
      runStarted(requestedSeq, new Date('2026-05-01T10:00:00Z')),
    );
    await projection.waitFor(startedSeq);
    const running = await runRow(requestedSeq);
    assert.equal(running?.state, 'running');
    assert.equal(running?.started_at, '2026-05-01 10:00:00.000000');
    const [detail] = await services.db.query<{ starter_id: string; operator: string }>(
      'SELECT starter_id, operator FROM run_detail WHERE run_id = ?',
      [requestedSeq],
    );
    assert.deepEqual({ ...detail }, { starter_id: 'starter-flow', operator: 'op@example.invalid' });

    const finishedSeq = await append(
      services.eventLog,
      runFinished(
        requestedSeq,
        new Date('2026-05-01T10:00:00Z'),
        new Date('2026-05-01T10:00:02.500Z'),
      ),
    );
    await projection.waitFor(finishedSeq);
    assert.deepEqual(
      { ...(await runRow(requestedSeq)) },
      {
        state: 'finished',
        success: 1,
        return_code: 0,
        output: 'done\n',
        owner: 'flow@example.invalid',
        started_at: '2026-05-01 10:00:00.000000',
        finished_at: '2026-05-01 10:00:02.500000',
      },
    );
    const userDays = await statistics(
      'user_run_script_statistics',
      'username',
      'flow@example.invalid',
    );
    assert.deepEqual(
      userDays.map((day) => ({ ...day })),
      [{ run_date: '2026-05-01', total_run_count: 1, total_run_time: 2.5 }],
    );
  });

  test('counts a RunFinished that arrives twice only once, and logs the second', async () => {
    const owner = 'twice@example.invalid';
    const startedAt = new Date('2026-05-02T08:00:00Z');
    const { runId } = await completedRun(owner, startedAt, new Date('2026-05-02T08:00:12Z'));
    const copy = await append(
      services.eventLog,
      runFinished(runId, startedAt, new Date('2026-05-02T08:00:30Z'), { output: 'forged\n' }),
      'redelivered',
    );
    await projection.waitFor(copy);
    const row = await runRow(runId);
    assert.equal(row?.output, 'done\n');
    assert.equal(row?.finished_at, '2026-05-02 08:00:12.000000');
    const days = await statistics('user_run_script_statistics', 'username', owner);
    assert.deepEqual(
      days.map((day) => ({ ...day })),
      [{ run_date: '2026-05-02', total_run_count: 1, total_run_time: 12 }],
    );
    assert.ok(
      warnings.some(
        (line) => line.msg === 'run already finished, event ignored' && line.runId === runId,
      ),
    );
  });

  test('counts a run on the day it finished in Europe/Berlin, across midnight', async () => {
    const owner = 'midnight@example.invalid';
    const beforeMidnight = await completedRun(
      owner,
      new Date('2026-03-09T22:59:00Z'),
      new Date('2026-03-09T22:59:59Z'),
    );
    const afterMidnight = await completedRun(
      owner,
      new Date('2026-03-09T22:59:30Z'),
      new Date('2026-03-09T23:00:30Z'),
    );
    const summer = await completedRun(
      owner,
      new Date('2026-07-31T21:59:00Z'),
      new Date('2026-07-31T22:00:01Z'),
    );
    await projection.waitFor(Math.max(beforeMidnight.last, afterMidnight.last, summer.last));
    const days = await statistics('user_run_script_statistics', 'username', owner);
    assert.deepEqual(
      days.map((day) => ({ ...day })),
      [
        { run_date: '2026-03-09', total_run_count: 1, total_run_time: 59 },
        { run_date: '2026-03-10', total_run_count: 1, total_run_time: 60 },
        { run_date: '2026-08-01', total_run_count: 1, total_run_time: 61 },
      ],
    );
  });

  test('writes base and org statistics, but no user row for a group and no org row for -1', async () => {
    const groupBase = 'aaaaaaaa-1111-4111-8111-000000000001';
    const orgBase = 'aaaaaaaa-1111-4111-8111-000000000002';
    const group = await completedRun(
      '77@seafile_group',
      new Date('2026-05-03T08:00:00Z'),
      new Date('2026-05-03T08:00:01Z'),
      -1,
      groupBase,
    );
    const org = await completedRun(
      'orguser@example.invalid',
      new Date('2026-05-03T08:00:00Z'),
      new Date('2026-05-03T08:00:03Z'),
      42,
      orgBase,
    );
    await projection.waitFor(Math.max(group.last, org.last));
    assert.equal(
      (await statistics('user_run_script_statistics', 'username', '77@seafile_group')).length,
      0,
    );
    assert.equal(
      (await statistics('dtable_run_script_statistics', 'dtable_uuid', groupBase)).length,
      1,
    );
    assert.equal((await statistics('org_run_script_statistics', 'org_id', -1)).length, 0);
    const orgDays = await statistics('org_run_script_statistics', 'org_id', 42);
    assert.deepEqual(
      orgDays.map((day) => ({ ...day })),
      [{ run_date: '2026-05-03', total_run_count: 1, total_run_time: 3 }],
    );
    assert.equal(
      (await statistics('user_run_script_statistics', 'username', 'orguser@example.invalid'))
        .length,
      1,
    );
  });

  test('ends a dispatch failure, a lost run and a rejection without counting them', async () => {
    const owner = 'nocount@example.invalid';
    const failed = await append(services.eventLog, runRequested({ owner }));
    await append(
      services.eventLog,
      runFinished(failed, null, new Date(), {
        success: false,
        returnCode: -1,
        output: 'Fail to get script',
      }),
    );
    const lost = await append(services.eventLog, runRequested({ owner }));
    await append(services.eventLog, runStarted(lost, new Date(Date.now() - 5000)));
    await append(
      services.eventLog,
      runFinished(lost, new Date(Date.now() - 5000), new Date(), {
        success: false,
        returnCode: -1,
        lost: true,
        output: 'lost',
      }),
    );
    const rejected = await append(services.eventLog, runRequested({ owner }));
    const last = await append(services.eventLog, {
      type: 'RunRejected',
      schemaVersion: 1,
      occurredAt: new Date().toISOString(),
      runId: rejected,
      data: {
        reason: 'fair_share_exceeded',
        output: 'Running scripts too frequently in a short period of time',
      },
    });
    await projection.waitFor(last);
    assert.deepEqual(
      [(await runRow(failed))?.output, (await runRow(failed))?.state],
      ['Fail to get script', 'finished'],
    );
    assert.equal((await runRow(lost))?.success, 0);
    const rejectedRow = await runRow(rejected);
    assert.deepEqual(
      [rejectedRow?.state, rejectedRow?.return_code, rejectedRow?.output],
      ['finished', -1, 'Running scripts too frequently in a short period of time'],
    );
    assert.equal((await statistics('user_run_script_statistics', 'username', owner)).length, 0);
  });

  test('assembles long output from its chunks and the last piece', async () => {
    const runId = await append(
      services.eventLog,
      runRequested({ owner: 'chunks@example.invalid' }),
    );
    const startedAt = new Date(Date.now() - 1000);
    await append(services.eventLog, runStarted(runId, startedAt));
    for (const [index, text] of ['first 😀 ', 'second '].entries()) {
      await append(services.eventLog, {
        type: 'RunOutputChunk',
        schemaVersion: 1,
        occurredAt: new Date().toISOString(),
        runId,
        data: { index, text },
      });
    }
    const last = await append(
      services.eventLog,
      runFinished(runId, startedAt, new Date(), { output: 'last\n', outputChunks: 2 }),
    );
    await projection.waitFor(last);
    assert.equal((await runRow(runId))?.output, 'first 😀 second last\n');
    const [left] = await services.db.query<{ chunks: number }>(
      'SELECT COUNT(*) AS chunks FROM run_output_chunk WHERE run_id = ?',
      [runId],
    );
    assert.equal(Number(left?.chunks), 0);
  });

  test('skips a malformed message with its reason and still moves the checkpoint past it', async () => {
    const ack = await services.eventLog.jetStream.publish(
      subjects.lifecycle(services.naming, 999999),
      '{"type":"RunStarted"',
    );
    const next = await append(
      services.eventLog,
      runRequested({ owner: 'after-garbage@example.invalid' }),
    );
    await projection.waitFor(next);
    assert.ok(warnings.some((line) => line.msg === 'malformed event skipped'));
    const [checkpoint] = await services.db.query<{ stream_sequence: number }>(
      "SELECT stream_sequence FROM pipeline_checkpoint WHERE projection = 'read_model'",
    );
    assert.ok(Number(checkpoint?.stream_sequence) >= next && next > ack.seq);
    assert.equal((await runRow(next))?.state, 'pending');
  });

  test('resumes after a restart from the checkpoint without counting anything twice', async () => {
    const owner = 'restart@example.invalid';
    const first = await completedRun(
      owner,
      new Date('2026-05-04T08:00:00Z'),
      new Date('2026-05-04T08:00:01Z'),
    );
    await projection.waitFor(first.last);
    await projection.stop();

    const second = await completedRun(
      owner,
      new Date('2026-05-04T09:00:00Z'),
      new Date('2026-05-04T09:00:02Z'),
    );
    assert.equal(await runRow(second.runId), undefined, 'nothing projected while stopped');
    projection = startProjection();
    await projection.waitFor(second.last);
    const days = await statistics('user_run_script_statistics', 'username', owner);
    assert.deepEqual(
      days.map((day) => ({ ...day })),
      [{ run_date: '2026-05-04', total_run_count: 2, total_run_time: 3 }],
    );
  });

  test('counts every run once when two projectors follow the log at the same time', async () => {
    const second = startProjection();
    try {
      const owner = 'two-projectors@example.invalid';
      let last = 0;
      for (let index = 0; index < 30; index++) {
        const startedAt = new Date(`2026-05-05T08:00:${String(index).padStart(2, '0')}Z`);
        last = (await completedRun(owner, startedAt, new Date(startedAt.getTime() + 1000))).last;
      }
      await Promise.all([projection.waitFor(last), second.waitFor(last)]);
      const days = await statistics('user_run_script_statistics', 'username', owner);
      assert.deepEqual(
        days.map((day) => ({ ...day })),
        [{ run_date: '2026-05-05', total_run_count: 30, total_run_time: 30 }],
      );
    } finally {
      await second.stop();
    }
  });

  test('a projector whose database connections die mid-batch resumes without gaps or doubles', async () => {
    await projection.stop();
    const owner = 'killed@example.invalid';
    let last = 0;
    const runIds: number[] = [];
    for (let index = 0; index < 200; index++) {
      const startedAt = new Date(Date.UTC(2026, 4, 6, 8, 0, index % 60));
      const run = await completedRun(owner, startedAt, new Date(startedAt.getTime() + 1000));
      runIds.push(run.runId);
      last = run.last;
    }
    // The connections there before the projector's own: those are not killed.
    const others = new Set(
      (
        await services.db.query<{ id: number }>(
          'SELECT ID AS id FROM information_schema.PROCESSLIST WHERE DB = ?',
          [services.db.name],
        )
      ).map((row) => Number(row.id)),
    );
    const orm = await openDatabase({ ...services.db, poolSize: 2 });
    const killed = new RunProjection({
      orm,
      eventLog: services.eventLog,
      timeZone,
      logger: recordingLogger(),
      batchSize: 40,
    });
    try {
      killed.start();
      // Kill the projector's connections (and so its open transaction, or the idle one it
      // takes next) a few times while it works through the backlog; each time it starts
      // over from the checkpoint. Idle ones count too: the backlog takes well under a
      // second, and the first kill must not depend on catching a statement in flight.
      let kills = 0;
      for (let attempt = 0; attempt < 200 && kills < 4 && killed.position < last; attempt++) {
        const connections = (
          await services.db.query<{ id: number }>(
            `SELECT ID AS id FROM information_schema.PROCESSLIST
             WHERE DB = ? AND ID <> CONNECTION_ID()`,
            [services.db.name],
          )
        ).filter((row) => !others.has(Number(row.id)));
        for (const { id } of connections) {
          await services.db.query(`KILL CONNECTION ${Number(id)}`).catch(() => {});
          kills += 1;
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.ok(kills > 0, 'the projector was interrupted at least once');
      await killed.waitFor(last);
    } finally {
      await killed.stop();
      await orm.close(true);
      projection = startProjection();
    }

    const days = await statistics('user_run_script_statistics', 'username', owner);
    assert.deepEqual(
      days.map((day) => ({ ...day })),
      [{ run_date: '2026-05-06', total_run_count: 200, total_run_time: 200 }],
    );
    const [finished] = await services.db.query<{ runs: number }>(
      `SELECT COUNT(*) AS runs FROM script_log WHERE owner = ? AND state = 'finished'`,
      [owner],
    );
    assert.equal(Number(finished?.runs), runIds.length);
  });

  test("a second scheduler's projector takes over when the first one stops mid-backlog", async () => {
    const orm = await openDatabase({ ...services.db, poolSize: 2 });
    const other = new RunProjection({
      orm,
      eventLog: services.eventLog,
      timeZone,
      logger: recordingLogger(),
      batchSize: 20,
    });
    other.start();
    try {
      const owner = 'take-over@example.invalid';
      let last = 0;
      for (let index = 0; index < 100; index++) {
        const startedAt = new Date(Date.UTC(2026, 4, 7, 8, 0, index % 60));
        last = (await completedRun(owner, startedAt, new Date(startedAt.getTime() + 2000))).last;
      }
      // The first scheduler goes away while both still work through the backlog.
      await projection.stop();
      await other.waitFor(last);
      const days = await statistics('user_run_script_statistics', 'username', owner);
      assert.deepEqual(
        days.map((day) => ({ ...day })),
        [{ run_date: '2026-05-07', total_run_count: 100, total_run_time: 200 }],
      );
    } finally {
      await other.stop();
      await orm.close(true);
      projection = startProjection();
    }
  });

  test('rebuilds exactly the same tables when the read model is dropped and the log replayed', async () => {
    const tables = [
      'script_log',
      'run_detail',
      'dtable_run_script_statistics',
      'user_run_script_statistics',
      'org_run_script_statistics',
    ];
    const snapshot = async () => {
      const contents: Record<string, unknown[]> = {};
      for (const table of tables) {
        const rows = await services.db.query<Record<string, unknown>>(`SELECT * FROM ${table}`);
        contents[table] = rows
          .map(({ id: _id, update_at: _updateAt, ...rest }) =>
            JSON.stringify(rest, (_key, value) =>
              value instanceof Date ? value.toISOString() : value,
            ),
          )
          .sort();
      }
      return contents;
    };
    // The BC-13 seeding of other test files is not here: this file's tables come from the log only.
    const last = await append(
      services.eventLog,
      runRequested({ owner: 'rebuild@example.invalid' }),
    );
    await projection.waitFor(last);
    const original = await snapshot();
    await projection.stop();
    for (const table of [...tables, 'pipeline_checkpoint', 'run_output_chunk'])
      await services.db.query(`DELETE FROM ${table}`);

    projection = startProjection();
    await projection.waitFor(last);
    assert.deepEqual(await snapshot(), original);
  });
});
