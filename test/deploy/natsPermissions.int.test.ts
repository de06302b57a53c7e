import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as connectSocket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import {
  bucketNames,
  consumerNames,
  defaultNaming,
  ensureStarterConsumer,
  ensureStream,
  subjects,
} from '@pipeline/events';
import { freePort } from '../support/nats.ts';

// The shipped accounts and permissions (deploy/nats/accounts.conf), on the NATS 2.9 of the
// test machines. nats.conf itself needs 2.12 (sync_interval) and a cluster; only its
// accounts are exercised here.
const accountsFile = fileURLToPath(new URL('../../deploy/nats/accounts.conf', import.meta.url));
const passwords = { scheduler: 'scheduler-test-password', starter: 'starter-test-password' };
const naming = defaultNaming;

let directory: string;
let server: ChildProcess;
let url: string;
let scheduler: NatsConnection;
let starter: NatsConnection;

before(async () => {
  directory = await mkdtemp(join(tmpdir(), 'pipeline-nats-accounts-'));
  await copyFile(accountsFile, join(directory, 'accounts.conf'));
  const port = await freePort();
  const storeDir = join(directory, 'store');
  await writeFile(
    join(directory, 'nats.conf'),
    `listen: 127.0.0.1:${port}\nmax_payload: 8MB\njetstream { store_dir: "${storeDir}" }\ninclude ./accounts.conf\n`,
  );
  server = spawn(process.env.NATS_SERVER_BIN ?? 'nats-server', ['-c', 'nats.conf'], {
    cwd: directory,
    env: {
      ...process.env,
      NATS_SCHEDULER_PASSWORD: passwords.scheduler,
      NATS_STARTER_PASSWORD: passwords.starter,
    },
    stdio: 'ignore',
  });
  await waitForPort(port);
  url = `nats://127.0.0.1:${port}`;

  scheduler = await connect({ servers: url, user: 'scheduler', pass: passwords.scheduler });
  const manager = await jetstreamManager(scheduler);
  // What the scheduler makes; the starters' consumer is the starters' to make.
  await ensureStream(manager, naming);
  await new Kvm(scheduler).create(bucketNames.fleet(naming));
  starter = await connect({ servers: url, user: 'starter', pass: passwords.starter });
});

after(async () => {
  await starter?.close();
  await scheduler?.close();
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  }
  await rm(directory, { recursive: true, force: true });
});

async function waitForPort(port: number): Promise<void> {
  for (let attempt = 0; attempt < 400; attempt++) {
    if (server.exitCode !== null) throw new Error('nats-server refused the shipped accounts');
    const open = await new Promise<boolean>((resolve) => {
      const socket = connectSocket(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`nats-server did not listen on ${port}`);
}

async function requestedCount(): Promise<number> {
  const manager = await jetstreamManager(scheduler);
  const info = await manager.streams.info(naming.stream, {
    subjects_filter: subjects.requested(naming),
  });
  return info.state.subjects?.[subjects.requested(naming)] ?? 0;
}

describe('the starter user', () => {
  test('finds the stream and makes its consumer the way a starter prepares them', async () => {
    const manager = await jetstreamManager(starter);

    const stream = await manager.streams.info(naming.stream);
    await ensureStarterConsumer(manager, naming);
    await ensureStarterConsumer(manager, naming);

    assert.equal(stream.config.name, naming.stream);
    const consumer = await (await jetstreamManager(scheduler)).consumers.info(
      naming.stream,
      consumerNames.starters,
    );
    assert.equal(consumer.config.filter_subject, subjects.requested(naming));
  });

  test('cannot make a consumer of its own over the lifecycle events', async () => {
    const manager = await jetstreamManager(starter, { timeout: 2_000 });

    await assert.rejects(
      manager.consumers.add(naming.stream, {
        durable_name: 'spy',
        filter_subject: subjects.lifecycleAll(naming),
        ack_policy: AckPolicy.None,
      }),
    );

    const names = [];
    for await (const info of (await jetstreamManager(scheduler)).consumers.list(naming.stream)) {
      names.push(info.name);
    }
    assert.deepEqual(names, [consumerNames.starters]);
  });

  test('pulls a run request from the starters consumer, extends it and acknowledges it', async () => {
    await jetstream(scheduler).publish(subjects.requested(naming), '{"probe":1}');
    const consumer = await jetstream(starter).consumers.get(naming.stream, consumerNames.starters);

    const message = await consumer.next({ expires: 5_000 });
    assert.ok(message, 'the starter received no run request');
    message.working();
    const acknowledged = await message.ackAck({ timeout: 5_000 });

    assert.equal(acknowledged, true);
    const manager = await jetstreamManager(scheduler);
    const info = await manager.consumers.info(naming.stream, consumerNames.starters);
    assert.equal(info.num_ack_pending, 0);
    assert.equal(info.num_pending, 0);
  });

  test('publishes the lifecycle events of a run into the log', async () => {
    const acknowledgement = await jetstream(starter).publish(
      subjects.lifecycle(naming, 1),
      '{"type":"RunStarted"}',
    );

    assert.equal(acknowledgement.stream, naming.stream);
  });

  test('asks the schedulers for a claim and gets their answer', async () => {
    const responder = scheduler.subscribe(subjects.claims(naming), {
      queue: 'schedulers',
      callback: (_error, message) => {
        message.respond('{"decision":"drop","reason":"probe"}');
      },
    });
    await scheduler.flush();

    const reply = await starter.request(subjects.claims(naming), '{"runId":1}', { timeout: 5_000 });

    assert.equal(reply.string(), '{"decision":"drop","reason":"probe"}');
    responder.unsubscribe();
  });

  test('pushes live output that the schedulers receive and the log never stores', async () => {
    const manager = await jetstreamManager(scheduler);
    const storedBefore = (await manager.streams.info(naming.stream)).state.messages;
    const received = new Promise<string>((resolve) => {
      const subscription = scheduler.subscribe(subjects.liveOutputAll(naming), {
        callback: (_error, message) => {
          subscription.unsubscribe();
          resolve(`${message.subject} ${message.string()}`);
        },
      });
    });
    await scheduler.flush();

    starter.publish(subjects.liveOutput(naming, 1), '{"kind":"end","runId":1,"length":0}');

    assert.equal(await received, 'pipeline.live.1 {"kind":"end","runId":1,"length":0}');
    assert.equal((await manager.streams.info(naming.stream)).state.messages, storedBefore);
  });

  test('keeps its heartbeat in the fleet bucket', async () => {
    const fleet = await new Kvm(starter).open(bucketNames.fleet(naming));

    await fleet.put('starter-probe', '{"busy":0}');

    const seen = await (await new Kvm(scheduler).open(bucketNames.fleet(naming))).get(
      'starter-probe',
    );
    assert.equal(seen?.string(), '{"busy":0}');
  });

  test("cannot read runs' events as they are appended, its own runs' included", async () => {
    const refused = new Promise<Error | null>((resolve) => {
      starter.subscribe(subjects.lifecycleAll(naming), {
        callback: (error, message) => resolve(error ?? new Error(`read ${message.subject}`)),
      });
      setTimeout(() => resolve(null), 3_000);
    });
    await starter.flush();

    await jetstream(scheduler).publish(subjects.lifecycle(naming, 41), '{"type":"RunStarted"}');

    const outcome = await refused;
    assert.ok(outcome, 'the subscription was neither refused nor fed');
    assert.match(outcome.message, /permissions violation/i);
  });

  test('hears a cancel on the cancel subject of a run it holds', async () => {
    const heard = new Promise<string>((resolve) => {
      starter.subscribe(subjects.cancels(naming, 42), {
        callback: (_error, message) => resolve(message.string()),
      });
    });
    await starter.flush();

    scheduler.publish(subjects.cancels(naming, 42), '{"type":"RunCancelRequested"}');

    assert.equal(await heard, '{"type":"RunCancelRequested"}');
  });

  test('cannot append a run request', async () => {
    const before = await requestedCount();

    await assert.rejects(
      jetstream(starter).publish(subjects.requested(naming), '{"forged":true}', { timeout: 2_000 }),
    );

    assert.equal(await requestedCount(), before);
  });

  test('cannot delete or purge the stream, nor delete the starters consumer', async () => {
    const manager = await jetstreamManager(starter, { timeout: 2_000 });

    await assert.rejects(manager.streams.delete(naming.stream));
    await assert.rejects(manager.streams.purge(naming.stream));
    await assert.rejects(manager.consumers.delete(naming.stream, consumerNames.starters));

    const schedulerManager = await jetstreamManager(scheduler);
    const stream = await schedulerManager.streams.info(naming.stream);
    assert.ok(stream.state.messages > 0, 'the log lost its messages');
    await schedulerManager.consumers.info(naming.stream, consumerNames.starters);
  });
});

describe('the accounts', () => {
  test('refuse a wrong password', async () => {
    await assert.rejects(
      connect({ servers: url, user: 'starter', pass: 'wrong', reconnect: false }),
    );
  });
});
