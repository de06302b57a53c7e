import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import {
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import {
  consumerNames,
  decodeEvent,
  encodeEvent,
  encodeJson,
  ensureStream,
  messageIdFor,
  type Naming,
  namingFor,
  outputTexts,
  type RunEvent,
  subjects,
} from '@pipeline/events';
import { pino } from 'pino';
import { type NatsServer, startNatsServer } from '../../../test/support/nats.ts';
import { maxUnreadableDeliveries } from '../src/consuming/requestDisposition.ts';
import { RunRequestConsumer } from '../src/consuming/runRequestConsumer.ts';
import { RunSlots } from '../src/consuming/runSlots.ts';

/**
 * Run requests a starter cannot read (issue #2), against a nats-server of this file's own:
 * each test writes requests into the requests' subject of a stream of its own, runs the
 * starter's request consumer over it, and reads back what the log and the starter's log
 * lines show once the consumer let go of the requests. No scheduler answers claims here:
 * an unreadable request must never reach one.
 */

const starterId = 'starter-unreadable-test';

let nats: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;

before(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
});

after(async () => {
  await nc?.close();
  await nats?.stop();
});

interface LogLine {
  level: number;
  msg: string;
  runId?: number;
  reason?: string;
}

/** What the test saw of one consumer's life. */
interface ConsumerRun {
  lines: LogLine[];
  executed: number[];
  claimsAsked: number;
}

async function freshStream(): Promise<Naming> {
  const naming = namingFor(`unread${randomBytes(3).toString('hex')}`);
  await ensureStream(jsm, naming);
  return naming;
}

async function publishRequest(naming: Naming, payload: Uint8Array): Promise<number> {
  const ack = await js.publish(subjects.requested(naming), payload);
  return ack.seq;
}

/** A request of a schema version this starter does not know, as a newer scheduler may write. */
function futureRequest(): Uint8Array {
  return encodeJson({
    type: 'RunRequested',
    schemaVersion: 99,
    occurredAt: new Date().toISOString(),
    data: {
      dtableUuid: '5d8c6f1e-2b1f-4d8e-9a51-0c1f2e3d4b5a',
      scriptName: 'hello.py',
      owner: 'someone@example.com',
      orgId: -1,
      contextData: null,
      operateFrom: 'manualy',
      operator: null,
      priority: 'a field of the future',
    },
  });
}

/**
 * Runs a request consumer over `naming`'s stream until the starters' durable consumer holds
 * nothing: every request delivered, and none pending or waiting to come back. Bounded, so
 * that a starter that never lets go fails the test with a message instead of hanging it.
 */
async function consumeUntilSettled(naming: Naming): Promise<ConsumerRun> {
  const run: ConsumerRun = { lines: [], executed: [], claimsAsked: 0 };
  const claims = nc.subscribe(subjects.claims(naming), {
    callback: () => {
      run.claimsAsked++;
    },
  });
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) {
        if (line.trim()) run.lines.push(JSON.parse(line) as LogLine);
      }
      done();
    },
  });
  const consumer = new RunRequestConsumer({
    nc,
    js,
    naming,
    starterId,
    host: 'test-host',
    slots: new RunSlots(2),
    log: pino({ level: 'debug' }, sink),
    execute: async (assignment) => {
      run.executed.push(assignment.runId);
    },
    unreadableTiming: { firstDelayMs: 20, giveUpAfterMs: 0 },
  });
  consumer.start();
  try {
    for (let attempt = 0; ; attempt++) {
      const info = await jsm.consumers
        .info(naming.stream, consumerNames.starters)
        .catch(() => null);
      if (info && info.delivered.stream_seq > 0 && info.num_pending === 0) {
        if (info.num_ack_pending === 0) break;
      }
      if (attempt >= 1_200) {
        throw new Error(
          `the starter never let go of the requests: ${JSON.stringify(info)}, ` +
            `its log: ${JSON.stringify(run.lines)}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    await consumer.stop();
    claims.unsubscribe();
  }
  return run;
}

/** Every event on one run's subject, in log order. */
async function eventsOf(naming: Naming, runId: number): Promise<RunEvent[]> {
  const subject = subjects.lifecycle(naming, runId);
  const info = await jsm.streams.info(naming.stream, { subjects_filter: subject });
  const events: RunEvent[] = [];
  for (let seq = runId + 1; seq <= info.state.last_seq; seq++) {
    const stored = await jsm.streams.getMessage(naming.stream, { seq });
    if (!stored || stored.subject !== subject) continue;
    const decoded = decodeEvent(stored.data);
    assert.ok(decoded.ok, `event ${seq} of run ${runId} decodes`);
    events.push(decoded.value);
  }
  assert.equal(
    events.length,
    info.state.subjects?.[subject] ?? 0,
    `every message on ${subject} was read`,
  );
  return events;
}

function linesOf(run: ConsumerRun, runId: number, level: 'warn' | 'error'): LogLine[] {
  const wanted = level === 'warn' ? 40 : 50;
  return run.lines.filter((line) => line.runId === runId && line.level === wanted);
}

/** The run ended by the starter as never started, with the readable output and `reason`. */
function assertEndedUnread(events: RunEvent[], runId: number, reason: RegExp): void {
  assert.equal(events.length, 1, `exactly one event on run ${runId}: ${JSON.stringify(events)}`);
  const [finished] = events;
  assert.ok(finished && finished.type === 'RunFinished', 'the one event is a RunFinished');
  assert.equal(finished.runId, runId);
  const { output, ...flags } = finished.data;
  assert.ok(output.startsWith(outputTexts.unreadableRequest), output);
  assert.match(output, reason);
  assert.deepEqual(
    {
      success: flags.success,
      returnCode: flags.returnCode,
      startedAt: flags.startedAt,
      outputChunks: flags.outputChunks,
      outputTruncated: flags.outputTruncated,
      timedOut: flags.timedOut,
      outOfMemory: flags.outOfMemory,
      cancelled: flags.cancelled,
      lost: flags.lost,
      starterId: flags.starterId,
    },
    {
      success: false,
      returnCode: -1,
      startedAt: null,
      outputChunks: 0,
      outputTruncated: false,
      timedOut: false,
      outOfMemory: false,
      cancelled: false,
      lost: false,
      starterId,
    },
  );
}

describe('a run request the starter cannot read', () => {
  test('is given back to the fleet, then its run ends with a RunFinished saying so', async () => {
    const naming = await freshStream();
    const runId = await publishRequest(naming, futureRequest());

    const run = await consumeUntilSettled(naming);

    // What the user sees: the run ended, not started, with a text that says why.
    assertEndedUnread(await eventsOf(naming, runId), runId, /schemaVersion/);
    // What the operator sees: each delivery but the last gave it back to the other
    // starters, with a warning naming the run; the last one ended it.
    const givenBack = linesOf(run, runId, 'warn');
    assert.equal(givenBack.length, maxUnreadableDeliveries - 1, JSON.stringify(run.lines));
    for (const line of givenBack) {
      assert.match(line.msg, new RegExp(`cannot read run request ${runId}.*other starters`));
    }
    const ended = linesOf(run, runId, 'error');
    assert.equal(ended.length, 1, JSON.stringify(run.lines));
    assert.match(ended[0]?.msg ?? '', new RegExp(`run ${runId} ended as failed`));
    // Delivered exactly that often, then terminated; never claimed, never run.
    const info = await jsm.consumers.info(naming.stream, consumerNames.starters);
    assert.equal(info.delivered.consumer_seq, maxUnreadableDeliveries);
    assert.equal(info.num_ack_pending, 0);
    assert.equal(run.claimsAsked, 0);
    assert.deepEqual(run.executed, []);
  });

  test('whose run already has an event is terminated without a RunFinished', async () => {
    const naming = await freshStream();
    const runId = await publishRequest(naming, futureRequest());
    // Another (upgraded) starter's claim was granted: the run is someone else's.
    const claimed: RunEvent = {
      type: 'RunClaimed',
      schemaVersion: 1,
      occurredAt: new Date().toISOString(),
      runId,
      data: { starterId: 'another-starter', host: 'another-host' },
    };
    await js.publish(subjects.lifecycle(naming, runId), encodeEvent(claimed), {
      msgID: messageIdFor(runId, 'RunClaimed'),
    });

    const run = await consumeUntilSettled(naming);

    const events = await eventsOf(naming, runId);
    assert.deepEqual(
      events.map((event) => event.type),
      ['RunClaimed'],
    );
    assert.deepEqual(events[0], claimed);
    const warnings = linesOf(run, runId, 'warn');
    assert.equal(warnings.length, maxUnreadableDeliveries, JSON.stringify(run.lines));
    assert.match(warnings.at(-1)?.msg ?? '', /already has events in the log/);
    assert.deepEqual(linesOf(run, runId, 'error'), []);
    const info = await jsm.consumers.info(naming.stream, consumerNames.starters);
    assert.equal(info.delivered.consumer_seq, maxUnreadableDeliveries);
    assert.equal(info.num_ack_pending, 0);
    assert.equal(run.claimsAsked, 0);
    assert.deepEqual(run.executed, []);
  });

  test('that is another event or not JSON at all ends its run the same way', async () => {
    const naming = await freshStream();
    const started: RunEvent = {
      type: 'RunStarted',
      schemaVersion: 1,
      occurredAt: new Date().toISOString(),
      runId: 1,
      data: { starterId: 'someone', containerId: 'abc' },
    };
    const otherEvent = await publishRequest(naming, encodeEvent(started));
    const notJson = await publishRequest(naming, new TextEncoder().encode('{"type": "RunReq'));

    const run = await consumeUntilSettled(naming);

    assertEndedUnread(await eventsOf(naming, otherEvent), otherEvent, /RunStarted/);
    assertEndedUnread(await eventsOf(naming, notJson), notJson, /not UTF-8 JSON/);
    assert.equal(run.claimsAsked, 0);
    assert.deepEqual(run.executed, []);
  });
});
