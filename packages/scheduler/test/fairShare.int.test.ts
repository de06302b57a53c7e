import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ClaimRequest } from '@pipeline/events';
import { FairSharePolicy } from '../src/claims/fairShare.ts';
import { openDatabase } from '../src/db/orm.ts';
import { NoticeBook } from '../src/fleet/noticeBook.ts';
import { SeaTableClient } from '../src/seatable/seatableClient.ts';
import { runRequested } from './support/events.ts';
import { baseUuid, type Services, startServices } from './support/harness.ts';
import { startTcpProxy } from './support/tcpProxy.ts';

let services: Services;
let policy: FairSharePolicy;
let seatable: SeaTableClient;
const now = new Date('2026-12-04T12:00:00Z');

before(async () => {
  services = await startServices('fairshare');
  seatable = new SeaTableClient({
    serverUrl: services.standin.url,
    authToken: services.standin.secret,
    timeoutMs: 2000,
  });
  policy = newPolicy(seatable);
});

after(async () => {
  await services?.close();
});

function newPolicy(
  client: Pick<SeaTableClient, 'notifyScriptsExceeded'>,
  orm = services.orm,
): FairSharePolicy {
  return new FairSharePolicy({
    orm,
    totalSlots: async () => 2,
    seatable: client,
    claimNotification: new NoticeBook(services.eventLog.jetStream, services.naming).claim,
    rules: {
      windowSeconds: 300,
      rateLimitShare: 0.25,
      deferMsPerQueuedRun: 20,
      minDeferMs: 1000,
      maxDeferMs: 15_000,
    },
    logger: services.logger,
    now: () => now,
  });
}

let nextId = 1000;

/** A run of the read model, finished `ago` seconds before `now` after `seconds` of run time. */
async function seedRun(options: {
  owner: string;
  orgId: number;
  state: 'pending' | 'running' | 'finished';
  seconds?: number;
  endedSecondsAgo?: number;
}): Promise<number> {
  const id = nextId++;
  const end = new Date(now.getTime() - (options.endedSecondsAgo ?? 0) * 1000);
  const start =
    options.state === 'pending' ? null : new Date(end.getTime() - (options.seconds ?? 0) * 1000);
  const sqlTime = (date: Date | null) => date?.toISOString().replace('T', ' ').replace('Z', '');
  await services.db.query(
    `INSERT INTO script_log (id, dtable_uuid, owner, org_id, script_name, started_at, finished_at,
       state, created_at, operate_from)
     VALUES (?, ?, ?, ?, 't.py', ?, ?, ?, ?, 'manualy')`,
    [
      id,
      baseUuid,
      options.owner,
      options.orgId,
      sqlTime(start) ?? null,
      options.state === 'finished' ? sqlTime(end) : null,
      options.state,
      sqlTime(new Date(now.getTime() - 1000)),
    ],
  );
  return id;
}

function claimFor(runId: number): ClaimRequest {
  return { runId, starterId: 'starter-1', host: 'host-1', deliveryCount: 1 };
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('fair share policy', () => {
  test('refuses an org over its share of the window and notifies SeaTable once', async () => {
    // Capacity 300 s × 2 slots = 600 s; a quarter is 150 s. Org 7 used 160 s in the window.
    await seedRun({ owner: 'a@example.invalid', orgId: 7, state: 'finished', seconds: 100 });
    await seedRun({ owner: 'b@example.invalid', orgId: 7, state: 'finished', seconds: 60 });
    const run = runRequested({ owner: 'c@example.invalid', orgId: 7 });

    const first = await policy.check(run, claimFor(1));
    const second = await policy.check(run, claimFor(2));

    assert.equal(first.decision, 'reject');
    assert.equal(second.decision, 'reject');
    await until(() => services.standin.notifications.length > 0, 'the notification');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const forOrg7 = services.standin.notifications.filter((notice) =>
      JSON.stringify(notice).includes('7'),
    );
    assert.equal(forOrg7.length, 1, JSON.stringify(services.standin.notifications));
  });

  test('counts only the part of a run inside the window, and users without org apart', async () => {
    // Ended 200 s ago after 400 s: only 100 s of it fall inside the 300 s window.
    await seedRun({
      owner: 'long@example.invalid',
      orgId: -1,
      state: 'finished',
      seconds: 400,
      endedSecondsAgo: 200,
    });
    // Another user's heavy use does not count for this one.
    await seedRun({ owner: 'heavy@example.invalid', orgId: -1, state: 'finished', seconds: 290 });

    const decision = await policy.check(
      runRequested({ owner: 'long@example.invalid', orgId: -1 }),
      claimFor(3),
    );

    assert.equal(decision.decision, 'allow');
  });

  test('counts the time of running runs so far', async () => {
    await seedRun({ owner: 'runner@example.invalid', orgId: 31, state: 'running', seconds: 151 });

    const decision = await policy.check(
      runRequested({ owner: 'runner@example.invalid', orgId: 31 }),
      claimFor(4),
    );

    assert.equal(decision.decision, 'reject');
  });

  test('defers an owner holding its slots while another owner waits, not the waiting one', async () => {
    await seedRun({ owner: 'burst@example.invalid', orgId: 41, state: 'running', seconds: 1 });
    const waiting = await seedRun({ owner: 'single@example.invalid', orgId: 42, state: 'pending' });
    const burstRun = await seedRun({ owner: 'burst@example.invalid', orgId: 41, state: 'pending' });

    const burst = await policy.check(
      runRequested({ owner: 'burst@example.invalid', orgId: 41 }),
      claimFor(burstRun),
    );
    const single = await policy.check(
      runRequested({ owner: 'single@example.invalid', orgId: 42 }),
      claimFor(waiting),
    );

    assert.deepEqual(burst, { decision: 'defer', delayMs: 1000 });
    assert.equal(single.decision, 'allow');
  });

  test('still refuses when the notification call fails, and does not wait for it', async () => {
    const failing = newPolicy({
      notifyScriptsExceeded: () => new Promise(() => {}),
    });
    await seedRun({ owner: 'x@example.invalid', orgId: 51, state: 'finished', seconds: 200 });

    const decision = await failing.check(
      runRequested({ owner: 'x@example.invalid', orgId: 51 }),
      claimFor(5),
    );

    assert.equal(decision.decision, 'reject');
  });

  test('lets claims through while the database cannot be reached, and checks again after', async () => {
    const proxy = await startTcpProxy(services.db.host, services.db.port);
    const orm = await openDatabase({
      host: '127.0.0.1',
      port: proxy.port,
      user: services.db.user,
      password: services.db.password,
      name: services.db.name,
      connectTimeoutMs: 1000,
    });
    try {
      let clock = now.getTime();
      const outagePolicy = new FairSharePolicy({
        orm,
        totalSlots: async () => 2,
        seatable,
        claimNotification: async () => false,
        rules: {
          windowSeconds: 300,
          rateLimitShare: 0.25,
          deferMsPerQueuedRun: 20,
          minDeferMs: 1000,
          maxDeferMs: 15_000,
        },
        logger: services.logger,
        now: () => new Date(clock),
      });
      // An org far over its share: refused while the database answers.
      await seedRun({ owner: 'down@example.invalid', orgId: 61, state: 'finished', seconds: 250 });
      const run = runRequested({ owner: 'down@example.invalid', orgId: 61 });
      assert.equal((await outagePolicy.check(run, claimFor(6))).decision, 'reject');

      await proxy.cut();
      assert.equal((await outagePolicy.check(run, claimFor(7))).decision, 'allow');
      assert.equal((await outagePolicy.check(run, claimFor(8))).decision, 'allow');

      await proxy.restore();
      clock += 6_000;
      assert.equal((await outagePolicy.check(run, claimFor(9))).decision, 'reject');
    } finally {
      await orm.close(true);
      await proxy.close();
    }
  });
});
