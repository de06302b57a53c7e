import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import {
  type ClaimReply,
  claimReplySchema,
  decodeWith,
  encodeJson,
  outputTexts,
  subjects,
} from '@pipeline/events';
import { ClaimResponder } from '../src/claims/claimResponder.ts';
import { RunProjection } from '../src/projection/runProjection.ts';
import { SeaTableClient } from '../src/seatable/seatableClient.ts';
import { append, runFinished, runRequested } from './support/events.ts';
import { baseUuid, type Services, startServices } from './support/harness.ts';

let services: Services;
let responders: ClaimResponder[] = [];
let secondConnection: NatsConnection;
let projection: RunProjection;

function responderOn(connection: NatsConnection): ClaimResponder {
  const responder = new ClaimResponder({
    connection,
    eventLog: services.eventLog,
    seatable: new SeaTableClient({
      serverUrl: services.standin.url,
      authToken: services.standin.secret,
    }),
    dtableWebUrl: services.standin.url,
    timeoutSeconds: 10,
    logger: services.logger,
  });
  responder.start();
  return responder;
}

before(async () => {
  services = await startServices('claims');
  secondConnection = await connect({ servers: services.nats.url });
  // Two schedulers in the queue group, on two connections.
  responders = [responderOn(services.connection), responderOn(secondConnection)];
  projection = new RunProjection({
    orm: services.orm,
    eventLog: services.eventLog,
    timeZone: 'Europe/Berlin',
    logger: services.logger,
  });
  projection.start();
  await services.connection.flush();
  await secondConnection.flush();
});

after(async () => {
  for (const responder of responders) await responder.stop();
  await projection?.stop();
  await secondConnection?.close();
  await services?.close();
});

async function claim(runId: number, starterId: string, deliveryCount = 1): Promise<ClaimReply> {
  const answer = await services.connection.request(
    subjects.claims(services.naming),
    encodeJson({ runId, starterId, host: `${starterId}.host`, deliveryCount }),
    { timeout: 10_000 },
  );
  const decoded = decodeWith(claimReplySchema, answer.data);
  assert.ok(decoded.ok, decoded.ok ? '' : decoded.reason);
  return decoded.value;
}

async function eventsOnRun(runId: number): Promise<number> {
  const info = await services.eventLog.jetStreamManager.streams.info(services.naming.stream, {
    subjects_filter: subjects.lifecycle(services.naming, runId),
  });
  return info.state.subjects?.[subjects.lifecycle(services.naming, runId)] ?? 0;
}

async function requestedRun(scriptName: string, withScript = true): Promise<number> {
  if (withScript)
    services.standin.setScript({ dtableUuid: baseUuid, scriptName, source: 'print(1)\n' });
  return await append(
    services.eventLog,
    runRequested({ scriptName, owner: 'claims@example.invalid' }),
  );
}

async function scriptRow(runId: number) {
  const [row] = await services.db.query<{
    state: string;
    success: number;
    output: string;
    started_at: string | null;
  }>('SELECT state, success, output, started_at FROM script_log WHERE id = ?', [runId]);
  return row;
}

describe('claim responder', () => {
  test('gives exactly one of two concurrent claims for one run the go-ahead', async () => {
    const runId = await requestedRun('t.py');
    const replies = await Promise.all([claim(runId, 'starter-a'), claim(runId, 'starter-b')]);
    const decisions = replies.map((reply) => reply.decision).sort();
    assert.deepEqual(decisions, ['drop', 'run']);
    const run = replies.find((reply) => reply.decision === 'run');
    assert.ok(run?.decision === 'run');
    assert.match(run.scriptUrl, new RegExp(`^${services.standin.url}/files/`));
    assert.ok(run.apiToken.length > 0);
    assert.equal(run.dtableWebUrl, services.standin.url);
    assert.equal(run.timeoutSeconds, 10);
    assert.equal(await eventsOnRun(runId), 1);
  });

  test('gives each of many concurrent claims on many runs exactly one go-ahead per run', async () => {
    const runIds = await Promise.all(Array.from({ length: 10 }, () => requestedRun('t.py')));
    const replies = await Promise.all(
      runIds.flatMap((runId) =>
        ['starter-a', 'starter-b', 'starter-c'].map((starter) => claim(runId, starter)),
      ),
    );
    const runs = replies.filter((reply) => reply.decision === 'run');
    assert.equal(runs.length, runIds.length);
    for (const runId of runIds) assert.equal(await eventsOnRun(runId), 1);
  });

  test('drops a claim for a run that is already claimed or finished', async () => {
    const runId = await requestedRun('t.py');
    assert.equal((await claim(runId, 'starter-a')).decision, 'run');
    const again = await claim(runId, 'starter-a', 2);
    assert.equal(again.decision, 'drop');

    const finished = await requestedRun('t.py');
    await append(
      services.eventLog,
      runFinished(finished, null, new Date(), { success: false, output: 'x' }),
    );
    assert.equal((await claim(finished, 'starter-a')).decision, 'drop');
  });

  test('drops a claim for a sequence that is not a run request', async () => {
    const runId = await requestedRun('t.py');
    const lifecycleSeq = await append(services.eventLog, runFinished(runId, null, new Date()));
    assert.equal((await claim(lifecycleSeq, 'starter-a')).decision, 'drop');
    assert.equal((await claim(10_000_000, 'starter-a')).decision, 'drop');
  });

  test('ends the run with "Fail to get script" when SeaTable answers 404 for the script', async () => {
    const runId = await requestedRun('missing.py', false);
    const reply = await claim(runId, 'starter-a');
    assert.equal(reply.decision, 'drop');
    await projection.waitFor(await lastSeq());
    const row = await scriptRow(runId);
    assert.deepEqual(
      [row?.state, row?.success, row?.output, row?.started_at],
      ['finished', 0, outputTexts.scriptNotFound, null],
    );
  });

  test('defers while SeaTable fails and ends the run as Failed after five deliveries', async () => {
    const runId = await requestedRun('t.py');
    services.standin.failNext('task-file', { status: 502 });
    const first = await claim(runId, 'starter-a', 1);
    assert.equal(first.decision, 'defer');
    assert.ok(first.decision === 'defer' && first.delayMs >= 1000);
    services.standin.failNext('task-file', { drop: true });
    assert.equal((await claim(runId, 'starter-a', 4)).decision, 'defer');
    assert.equal(await eventsOnRun(runId), 0);

    services.standin.failNext('task-file', { status: 500 });
    const last = await claim(runId, 'starter-a', 5);
    assert.equal(last.decision, 'drop');
    await projection.waitFor(await lastSeq());
    const row = await scriptRow(runId);
    assert.deepEqual([row?.state, row?.output], ['finished', outputTexts.failed]);
  });

  test('asks SeaTable for the script with the name as one path segment and the token', async () => {
    for (const name of ['100%.py', 'a+b c#1.py', 'Report März 😀.py']) {
      const runId = await requestedRun(name);
      const before = services.standin.requests.length;
      assert.equal((await claim(runId, 'starter-a')).decision, 'run', name);
      const asked = services.standin.requests
        .slice(before)
        .find((request) => request.route === 'task-file');
      assert.equal(
        asked?.path,
        `/api/v2.1/dtable/${baseUuid}/run-script/${encodeURIComponent(name)}/task/file/`,
      );
      assert.equal(asked?.headers.authorization, `Token ${services.standin.secret}`);
    }
  });
});

async function lastSeq(): Promise<number> {
  const info = await services.eventLog.jetStreamManager.streams.info(services.naming.stream);
  return info.state.last_seq;
}
