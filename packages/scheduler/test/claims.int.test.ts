import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import {
  type ClaimReply,
  claimReplySchema,
  decodeWith,
  encodeJson,
  newClaimKeys,
  outputTexts,
  subjects,
} from '@pipeline/events';
import { requestClaim } from '../../starter/src/consuming/claimClient.ts';
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

  test('seals a grant to the asking starter: another starter on the reply inboxes reads no token', async () => {
    const runId = await requestedRun('sealed.py');
    const overheard: string[] = [];
    const eavesdropper = secondConnection.subscribe('_INBOX.>', {
      // The inboxes also carry JetStream's acks of the responders' appends: keep the replies.
      callback: (_error, message) => {
        if (message.string().startsWith('{"decision"')) overheard.push(message.string());
      },
    });
    await secondConnection.flush();
    const keys = newClaimKeys();
    const request = {
      runId,
      starterId: 'starter-a',
      host: 'starter-a.host',
      deliveryCount: 1,
      replyKey: keys.publicKey,
    };

    const answer = await requestClaim(
      services.connection,
      services.naming,
      request,
      keys.privateKey,
    );
    await secondConnection.flush();
    eavesdropper.unsubscribe();

    assert.equal(answer.decision, 'run');
    assert.ok(answer.decision === 'run' && answer.apiToken.length > 0);
    assert.equal(overheard.length, 1, 'the eavesdropper saw the reply go by');
    assert.ok(!overheard[0]?.includes(answer.apiToken), 'the token is not readable');
    assert.ok(!overheard[0]?.includes('/files/'), 'the script URL is not readable');
    assert.match(overheard[0] ?? '', /^\{"decision":"sealed","sealed":"/);
    const otherKeys = newClaimKeys();
    const sealed = JSON.parse(overheard[0] ?? '{}') as { sealed: string };
    const { openSealed } = await import('@pipeline/events');
    assert.throws(() => openSealed(sealed.sealed, otherKeys.privateKey));
  });

  test('refuses to decide a claim whose reply key is not an X25519 key, and claims nothing', async () => {
    const runId = await requestedRun('badkey.py');
    const answer = await services.connection.request(
      subjects.claims(services.naming),
      encodeJson({ runId, starterId: 's', host: 'h', deliveryCount: 1, replyKey: 'bm90IGEga2V5' }),
      { timeout: 10_000 },
    );
    const decoded = decodeWith(claimReplySchema, answer.data);
    assert.ok(decoded.ok);
    assert.deepEqual(
      decoded.value.decision === 'defer' ? decoded.value.reason : decoded.value,
      'unusable reply key',
    );
    assert.equal(await eventsOnRun(runId), 0);
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
