import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as connectSocket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { defaultNaming, subjects } from '@pipeline/events';
import { recordChaos } from '../support/chaosReport.ts';
import { freePort } from '../support/nats.ts';

// Issue #6 asks that a starter credential cannot read the claim replies of other starters:
// those replies carry the temporary API token of the run. With the shipped permissions
// (deploy/nats/accounts.conf) every starter shares one user that may subscribe to `_INBOX.>`,
// so one starter can read the replies meant for another. This test shows it and stays a
// `todo` until the permissions change (issue #4 owns them).

const accountsFile = fileURLToPath(new URL('../../deploy/nats/accounts.conf', import.meta.url));
const passwords = { scheduler: 'scheduler-test-password', starter: 'starter-test-password' };
const claimsSubject = subjects.claims(defaultNaming);

let directory: string;
let server: ChildProcess;
let scheduler: NatsConnection;
let starterA: NatsConnection;
let starterB: NatsConnection;

before(async () => {
  directory = await mkdtemp(join(tmpdir(), 'pipeline-claim-replies-'));
  await copyFile(accountsFile, join(directory, 'accounts.conf'));
  const port = await freePort();
  await writeFile(
    join(directory, 'nats.conf'),
    `listen: 127.0.0.1:${port}\njetstream { store_dir: "${join(directory, 'store')}" }\ninclude ./accounts.conf\n`,
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
  const servers = `nats://127.0.0.1:${port}`;
  scheduler = await connect({ servers, user: 'scheduler', pass: passwords.scheduler });
  starterA = await connect({ servers, user: 'starter', pass: passwords.starter });
  starterB = await connect({ servers, user: 'starter', pass: passwords.starter });
});

after(async () => {
  for (const connection of [starterB, starterA, scheduler]) await connection?.close();
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

describe('claim replies under the shipped NATS permissions', () => {
  test('a starter cannot read the claim reply meant for another starter', {
    todo: 'the starter user may subscribe to _INBOX.> (deploy/nats/accounts.conf, issue #4)',
  }, async () => {
    const responder = scheduler.subscribe(claimsSubject, {
      callback: (_error, message) => {
        message.respond('{"decision":"run","apiToken":"secret"}');
      },
    });
    const overheard: string[] = [];
    const eavesdropper = starterB.subscribe('_INBOX.>', {
      callback: (_error, message) => {
        overheard.push(message.string());
      },
    });
    await Promise.all([scheduler.flush(), starterB.flush()]);

    const reply = await starterA.request(claimsSubject, '{"runId":1}', { timeout: 5_000 });
    assert.match(reply.string(), /secret/);
    await starterB.flush();
    await new Promise((resolve) => setTimeout(resolve, 200));
    eavesdropper.unsubscribe();
    responder.unsubscribe();

    const name = 'NATS permissions: others’ claim replies';
    recordChaos(
      overheard.length === 0
        ? { kind: 'fault', name, survived: true, detail: 'another starter saw no claim reply' }
        : {
            kind: 'gap',
            name,
            detail: `another starter read ${overheard.length} claim reply with its API token (issue #4)`,
          },
    );
    assert.deepEqual(overheard, []);
  });
});
