import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Kvm } from '@nats-io/kv';
import { bucketNames, encodeJson, outputTexts, type StarterHeartbeat } from '@pipeline/events';
import { FleetView } from '../src/fleet/fleetView.ts';
import { RunProjection } from '../src/projection/runProjection.ts';
import { LostRunWatchdog } from '../src/watchdog/lostRuns.ts';
import { append, runFinished, runRequested, runStarted } from './support/events.ts';
import { type Services, startServices } from './support/harness.ts';

let services: Services;
let projection: RunProjection;
let watchdog: LostRunWatchdog;

before(async () => {
  services = await startServices('watchdog');
  projection = new RunProjection({
    orm: services.orm,
    eventLog: services.eventLog,
    timeZone: 'Europe/Berlin',
    logger: services.logger,
  });
  projection.start();
  watchdog = new LostRunWatchdog({
    orm: services.orm,
    eventLog: services.eventLog,
    // Fresh reads every time: the test puts heartbeats between sweeps.
    fleet: {
      isAlive: (starterId, since, life) =>
        new FleetView({ jetStream: services.eventLog.jetStream, naming: services.naming }).isAlive(
          starterId,
          since,
          life,
        ),
    },
    timeoutSeconds: 10,
    graceSeconds: 5,
    intervalSeconds: 3600,
    logger: services.logger,
  });
});

after(async () => {
  await watchdog?.stop();
  await projection?.stop();
  await services?.close();
});

async function beat(
  starterId: string,
  life?: { startedAt: Date; starterLife?: string },
): Promise<void> {
  const kvm = new Kvm(services.eventLog.jetStream);
  const bucket = await kvm.create(bucketNames.fleet(services.naming), { ttl: 30_000, history: 1 });
  const now = new Date().toISOString();
  const heartbeat: StarterHeartbeat = {
    starterId,
    host: 'live.host',
    slots: 2,
    busy: 1,
    draining: false,
    startedAt: life?.startedAt.toISOString() ?? now,
    ...(life?.starterLife ? { starterLife: life.starterLife } : {}),
    at: now,
    version: 'test',
  };
  await bucket.put(starterId, encodeJson(heartbeat));
}

/** A run claimed (and, with `startedSecondsAgo`, started) by `starterId` in the past. */
async function claimedRun(
  starterId: string,
  claimedSecondsAgo: number,
  startedSecondsAgo?: number,
  starterLife?: string,
) {
  const runId = await append(
    services.eventLog,
    runRequested({ owner: 'watchdog@example.invalid' }),
  );
  let last = await append(services.eventLog, {
    type: 'RunClaimed',
    schemaVersion: 1,
    occurredAt: new Date(Date.now() - claimedSecondsAgo * 1000).toISOString(),
    runId,
    data: { starterId, host: `${starterId}.host`, ...(starterLife ? { starterLife } : {}) },
  });
  if (startedSecondsAgo !== undefined) {
    last = await append(
      services.eventLog,
      runStarted(runId, new Date(Date.now() - startedSecondsAgo * 1000), starterId),
    );
  }
  await projection.waitFor(last);
  return runId;
}

async function runRow(runId: number) {
  const [row] = await services.db.query<{
    state: string;
    success: number | null;
    return_code: number | null;
    output: string | null;
    started_at: string | null;
  }>(
    'SELECT state, success, return_code, output, CAST(started_at AS CHAR) AS started_at FROM script_log WHERE id = ?',
    [runId],
  );
  return row;
}

async function sweepAndProject(): Promise<number> {
  const ended = await watchdog.sweepOnce();
  const info = await services.eventLog.jetStreamManager.streams.info(services.naming.stream);
  await projection.waitFor(info.state.last_seq);
  return ended;
}

describe('lost-run watchdog', () => {
  test('ends a started run whose starter has no heartbeat, without counting it', async () => {
    const runId = await claimedRun('dead-starter', 120, 100);
    assert.equal(await sweepAndProject(), 1);
    const row = await runRow(runId);
    assert.deepEqual(
      [row?.state, row?.success, row?.return_code, row?.output],
      ['finished', 0, -1, outputTexts.lost],
    );
    assert.ok(row?.started_at, 'the start stays as it was known');
    const [lost] = await services.db.query<{ lost: number }>(
      'SELECT lost FROM run_detail WHERE run_id = ?',
      [runId],
    );
    assert.equal(lost?.lost, 1);
    const [stats] = await services.db.query<{ runs: number | null }>(
      "SELECT SUM(total_run_count) AS runs FROM user_run_script_statistics WHERE username = 'watchdog@example.invalid'",
    );
    assert.equal(stats?.runs ?? null, null);
  });

  test('ends a claimed run that never started, with no start time', async () => {
    const runId = await claimedRun('dead-starter-2', 60);
    assert.equal(await sweepAndProject(), 1);
    const row = await runRow(runId);
    assert.deepEqual(
      [row?.state, row?.output, row?.started_at],
      ['finished', outputTexts.lost, null],
    );
  });

  test('leaves runs alone whose starter still beats or whose deadline has not passed', async () => {
    // A starter older than the life id: its life started before the claim.
    await beat('live-starter', { startedAt: new Date(Date.now() - 200_000) });
    const alive = await claimedRun('live-starter', 120, 100);
    const recent = await claimedRun('dead-starter-3', 3, 2);
    assert.equal(await sweepAndProject(), 0);
    assert.equal((await runRow(alive))?.state, 'running');
    assert.equal((await runRow(recent))?.state, 'running');
  });

  test('ends a run whose starter came back under the same id as another life, soon after the claim', async () => {
    const runId = await claimedRun('restarted-starter', 100, 99, 'life-before');
    // The new life started 2 s after the claim: within the clock-skew allowance, so only the
    // life id tells it from the one that claimed the run.
    await beat('restarted-starter', {
      startedAt: new Date(Date.now() - 98_000),
      starterLife: 'life-after',
    });
    const kept = await claimedRun('steady-starter', 100, 99, 'life-steady');
    await beat('steady-starter', {
      startedAt: new Date(Date.now() - 99_000),
      starterLife: 'life-steady',
    });
    assert.equal(await sweepAndProject(), 1);
    assert.deepEqual(
      [(await runRow(runId))?.state, (await runRow(runId))?.output],
      ['finished', outputTexts.lost],
    );
    assert.equal((await runRow(kept))?.state, 'running', 'the same life still holds its run');
  });

  test('keeps the lost result when the real result arrives afterwards (BC-14)', async () => {
    const runId = await claimedRun('dead-starter-4', 120, 100);
    assert.equal(await sweepAndProject(), 1);
    const late = await append(
      services.eventLog,
      runFinished(runId, new Date(Date.now() - 100_000), new Date(), { output: 'late\n' }),
      'late',
    );
    await projection.waitFor(late);
    assert.equal((await runRow(runId))?.output, outputTexts.lost);
    assert.equal(await sweepAndProject(), 0, 'a finished run is not ended twice');
  });
});
