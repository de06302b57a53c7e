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
import {
  claimRequestSchema,
  decodeWith,
  defaultNaming,
  encodeJson,
  newClaimKeys,
  openSealed,
  sealFor,
  subjects,
} from '@pipeline/events';
import { requestClaim } from '../../packages/starter/src/consuming/claimClient.ts';
import { recordChaos } from '../support/chaosReport.ts';
import { freePort } from '../support/nats.ts';

// Issue #6 asks that a starter credential cannot read the claim replies of other starters:
// a grant carries the run's temporary API token. With the shipped permissions
// (deploy/nats/accounts.conf) every starter shares one user that may subscribe to `_INBOX.>`,
// so the replies themselves go by; a grant is therefore sealed to the key the asking starter
// sent (packages/events/src/claimSeal.ts, as the scheduler's ClaimResponder does, tested in
// packages/scheduler/test/claims.int.test.ts). Here: another starter overhears, and reads
// nothing it could use.

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
  test('a starter cannot read the claim reply meant for another starter', async () => {
    const grant = {
      decision: 'run',
      scriptUrl: 'http://seatable.invalid/files/secret-path',
      apiToken: 'secret-token',
      dtableWebUrl: 'http://seatable.invalid',
      timeoutSeconds: 60,
    };
    const responder = scheduler.subscribe(claimsSubject, {
      callback: (_error, message) => {
        const request = decodeWith(claimRequestSchema, message.data);
        const key = request.ok ? request.value.replyKey : undefined;
        message.respond(
          key
            ? encodeJson({ decision: 'sealed', sealed: sealFor(key, encodeJson(grant)) })
            : encodeJson({ decision: 'defer', delayMs: 1000, reason: 'no reply key' }),
        );
      },
    });
    const overheard: string[] = [];
    const eavesdropper = starterB.subscribe('_INBOX.>', {
      callback: (_error, message) => {
        overheard.push(message.string());
      },
    });
    await Promise.all([scheduler.flush(), starterB.flush()]);

    const keysA = newClaimKeys();
    const answer = await requestClaim(
      starterA,
      defaultNaming,
      { runId: 1, starterId: 'a', host: 'a', deliveryCount: 1, replyKey: keysA.publicKey },
      keysA.privateKey,
    );
    assert.equal(answer.decision === 'run' ? answer.apiToken : answer.decision, 'secret-token');
    await starterB.flush();
    await new Promise((resolve) => setTimeout(resolve, 200));
    eavesdropper.unsubscribe();
    responder.unsubscribe();

    const name = 'NATS permissions: others’ claim replies';
    const readable = overheard.filter((text) => /secret/.test(text));
    const keysB = newClaimKeys();
    const opened = overheard.filter((text) => {
      try {
        openSealed((JSON.parse(text) as { sealed?: string }).sealed ?? '', keysB.privateKey);
        return true;
      } catch {
        return false;
      }
    });
    recordChaos(
      readable.length === 0 && opened.length === 0
        ? {
            kind: 'fault',
            name,
            survived: true,
            detail: `another starter overheard ${overheard.length} sealed grant, read no token`,
          }
        : {
            kind: 'gap',
            name,
            detail: `another starter read ${readable.length + opened.length} grant with its API token`,
          },
    );
    assert.equal(overheard.length, 1, 'the reply went by on the shared inboxes');
    assert.deepEqual([readable, opened], [[], []]);
  });
});
