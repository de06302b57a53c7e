import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DeliverPolicy } from '@nats-io/jetstream';
import { decodeLogEvent, encodeEvent, namingFor, outputPieces, subjects } from '@pipeline/events';
import { importAdoptedHistory } from '../../src/adoption/adoptedHistory.ts';
import { rebuildReadModel } from '../../src/audit/rebuild.ts';
import { RunEventLog } from '../../src/messaging/eventLog.ts';
import { ensureEventLog } from '../../src/messaging/streamSetup.ts';
import { RunProjection } from '../../src/projection/runProjection.ts';
import { type Services, startServices, testLogger } from '../support/harness.ts';

// Issue #5: the history of an adopted original goes into the log once, however many
// schedulers import it and however often one restarts, and a rebuild keeps it exactly.

let services: Services;
let eventLog: RunEventLog;
const naming = namingFor('adoptedhistory');

/**
 * Run 19's output: a flood the original kept whole, 1.2 MB in UTF-8, more than one message
 * holds, so it goes into the log in pieces.
 */
const longOutput = `${'é'.repeat(300_000)}${'😀'.repeat(150_000)}\n`;

/** The values a rebuild must keep to the last digit: a FLOAT and microseconds. */
const exactValues = `SELECT CAST(total_run_time AS DOUBLE) AS run_time, CAST(update_at AS CHAR) AS update_at
  FROM user_run_script_statistics WHERE username = 'old@example.invalid'`;

before(async () => {
  services = await startServices('adoptedhistory');
  for (const id of [17, 18, 19]) {
    await services.db.query(
      `INSERT INTO script_log (id, dtable_uuid, owner, org_id, script_name, context_data,
         started_at, finished_at, success, return_code, output, operate_from, state, created_at)
       VALUES (?, '0b7c8d9e-1f2a-4b3c-8d4e-5f6a7b8c9d0e', 'old@example.invalid', 42, 'legacy.py',
         '{"row": 1}', '2026-11-01 09:00:00.123456', '2026-11-01 09:00:03.654321', ?, ?, ?,
         'manualy', 'finished', '2026-11-01 08:59:59.999999')`,
      [id, id !== 18, id === 18 ? 1 : 0, id === 19 ? longOutput : `output of ${id} 😀\n`],
    );
  }
  await services.db.query(
    `INSERT INTO user_run_script_statistics (username, org_id, run_date, total_run_count, total_run_time, update_at)
     VALUES ('old@example.invalid', 42, '2026-11-01', 3, 16777.217, '2026-11-01 09:00:03.654321')`,
  );
  await services.db.query(
    `INSERT INTO dtable_run_script_statistics (dtable_uuid, run_date, total_run_count, total_run_time, update_at)
     VALUES ('0b7c8d9e-1f2a-4b3c-8d4e-5f6a7b8c9d0e', '2026-11-01', 3, 0.1, NULL)`,
  );
  await services.db.query(
    `INSERT INTO user_run_script_statistics_monthly (month, username, total_run_count, total_run_time)
     VALUES ('2026-11-01', 'old@example.invalid', 3, 16777.216796875)`,
  );
  eventLog = await RunEventLog.open(services.connection, naming);
  const settings = { maxAgeSeconds: 0, maxBytes: -1, replicas: 1 };
  await ensureEventLog(eventLog.jetStreamManager, naming, settings, services.orm, testLogger());
  // An earlier import that died after the first piece of run 19's output.
  await eventLog.jetStream.publish(
    subjects.lifecycle(naming, 19),
    encodeEvent({
      type: 'RunOutputChunk',
      schemaVersion: 1,
      occurredAt: '2026-12-01T00:00:00.000Z',
      runId: 19,
      data: { index: 0, text: outputPieces(longOutput)[0] ?? '' },
    }),
  );
});

after(async () => {
  await services?.close();
});

/** Every message of the adopted log, decoded: its type, and a chunk's run and index. */
async function logTypes(): Promise<string[]> {
  const { state } = await eventLog.jetStreamManager.streams.info(naming.stream);
  if (state.messages === 0) return [];
  const consumer = await eventLog.jetStream.consumers.get(naming.stream, {
    deliver_policy: DeliverPolicy.All,
  });
  const types: string[] = [];
  const messages = await consumer.consume();
  for await (const message of messages) {
    const decoded = decodeLogEvent(message.data);
    if (!decoded.ok) types.push(`invalid: ${decoded.reason}`);
    else if (decoded.value.type === 'RunOutputChunk') {
      types.push(`RunOutputChunk ${decoded.value.runId}/${decoded.value.data.index}`);
    } else types.push(decoded.value.type);
    if (message.info.pending === 0) break;
  }
  await messages.close();
  return types;
}

describe('importing an adopted history', () => {
  test('writes each run and statistics table once, with two schedulers and after a restart', async () => {
    const deps = { orm: services.orm, eventLog, logger: testLogger() };
    const [first, second] = await Promise.all([
      importAdoptedHistory(deps),
      importAdoptedHistory(deps),
    ]);
    assert.equal(first?.runs, 3);
    assert.equal(second?.runs, 3);
    // A scheduler that died before it noted the end starts over: the log refuses what it has.
    await services.db.query(
      'UPDATE pipeline_adoption SET imported_through = 0, imported_at = NULL',
    );
    await importAdoptedHistory(deps);
    assert.equal(await importAdoptedHistory(deps), null, 'a finished import is not run again');

    const types = await logTypes();
    const pieces = outputPieces(longOutput);
    assert.ok(pieces.length >= 5, `${pieces.length} pieces`);
    assert.deepEqual(types.toSorted(), [
      'RunImported',
      'RunImported',
      'RunImported',
      // Run 19's output in pieces, each once, the one the earlier import wrote included.
      ...pieces.slice(0, -1).map((_piece, index) => `RunOutputChunk 19/${index}`),
      'StatisticsImported',
      'StatisticsImported',
      'StatisticsImported',
    ]);
  });

  test('leaves the database it came from as it is, and a rebuild reproduces it exactly', async () => {
    const [valuesBefore] = await services.db.query<Record<string, unknown>>(exactValues);
    const projection = new RunProjection({
      orm: services.orm,
      eventLog,
      timeZone: 'Europe/Berlin',
      logger: testLogger(),
    });
    projection.start();
    const { state } = await eventLog.jetStreamManager.streams.info(naming.stream);
    await projection.waitFor(state.last_seq);
    await projection.stop();

    const report = await rebuildReadModel(
      {
        orm: services.orm,
        database: { ...services.db },
        eventLog,
        timeZone: 'Europe/Berlin',
        retention: { logDays: 100_000, statisticsDays: 100_000 },
        logger: testLogger(),
      },
      { swap: true, force: false },
    );

    assert.deepEqual(report.differing, []);
    assert.equal(report.runsNotInLog, 0);
    assert.equal(report.swapped, true);
    const rows = (table: string) => report.after.find((summary) => summary.table === table)?.rows;
    assert.equal(rows('script_log'), 3);
    assert.equal(rows('user_run_script_statistics'), 1);
    assert.equal(rows('user_run_script_statistics_monthly'), 1);
    const [kept] = await services.db.query<{ output: string }>(
      'SELECT output FROM script_log WHERE id = 19',
    );
    assert.equal(kept?.output.length, longOutput.length);
    assert.ok(kept?.output === longOutput, 'the long output is rebuilt whole');
    const [chunksLeft] = await services.db.query<{ n: number }>(
      'SELECT COUNT(*) AS n FROM run_output_chunk',
    );
    assert.equal(Number(chunksLeft?.n), 0);
    const [valuesAfter] = await services.db.query<Record<string, unknown>>(exactValues);
    assert.deepEqual(valuesAfter, valuesBefore);
    assert.deepEqual(valuesAfter, {
      run_time: 16777.216796875,
      update_at: '2026-11-01 09:00:03.654321',
    });
  });
});
