import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  baseUuid,
  type ChaosPipeline,
  canRunSecondEngine,
  startChaosPipeline,
} from '../support/chaosPipeline.ts';
import { recordChaos } from '../support/chaosReport.ts';
import { checkInvariants } from '../support/invariants.ts';
import { LoadSubmitter } from '../support/loadSubmitter.ts';
import { chaosProfile } from './profile.ts';

// Issue #6: each fault under a steady load of submissions, then the invariants. The services
// are child processes on servers of this file's own (nats-server, mariadbd, a second
// dockerd), so that each can be killed or stopped without touching the machine's own.
// Run by `npm run test:chaos` (scripts/chaos.ts), which prints the summary table.

const profile = chaosProfile();
const timeoutSeconds = 10;
const graceSeconds = 3;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let pipeline: ChaosPipeline;
let load: LoadSubmitter;

before(async () => {
  pipeline = await startChaosPipeline({
    label: 'chaos',
    timeoutSeconds,
    graceSeconds,
    slotsPerStarter: 4,
  });
  load = new LoadSubmitter({
    url: pipeline.url,
    token: pipeline.token,
    standin: pipeline.standin,
    dtableUuid: baseUuid,
    owners: ['chaos-a@example.invalid', 'chaos-b@example.invalid', 'chaos-c@example.invalid'],
    ratePerSecond: profile.ratePerSecond,
    sleepEvery: 4,
    sleepSeconds: 2,
    limitEvery: 5,
    resendForMs: 100_000,
  });
});

after(async () => {
  if (!profile.engineRestart) {
    recordChaos({
      kind: 'skipped',
      name: 'Docker engine restart',
      reason: 'left out by CHAOS_ENGINE_RESTART=0',
    });
  }
  await load?.stop();
  if (process.env.CHAOS_KEEP_LOGS) console.log(`chaos logs in ${pipeline?.logDirectory}`);
  await pipeline?.stop();
});

/** What a fault saw, and a check to run once the load has drained (its runs have ended). */
interface FaultOutcome {
  detail: string;
  afterDrain?: () => Promise<string>;
}

/**
 * Runs the load, applies the fault in its middle, stops the load, checks the invariants and
 * reports it all to the summary table. `fault` returns what it observed and throws when the
 * pipeline did not behave during the fault.
 */
async function experiment(name: string, fault: () => Promise<FaultOutcome>): Promise<void> {
  const containersBefore = await pipeline.containersLeft();
  const startedAt = Date.now();
  load.start(name);
  await sleep(profile.loadBeforeMs);
  let outcome: FaultOutcome = { detail: '' };
  let failure: unknown;
  try {
    outcome = await fault();
  } catch (error) {
    failure = error;
  }
  await sleep(profile.loadAfterMs);
  await load.stop();
  const submitted = load.of(name);
  const loadSeconds = (Date.now() - startedAt) / 1000;
  const invariants = await checkInvariants(pipeline, submitted, {
    timeoutSeconds,
    graceSeconds,
    drainMs: profile.drainMs,
    containersBefore,
  });
  let detail = outcome.detail;
  if (!failure && outcome.afterDrain) {
    try {
      detail = `${detail}; ${await outcome.afterDrain()}`;
    } catch (error) {
      failure = error;
    }
  }

  const problems = [...(failure ? [(failure as Error).message] : []), ...invariants.problems];
  recordChaos({
    kind: 'load',
    experiment: name,
    submissions: submitted.length,
    seconds: loadSeconds,
    runs: invariants.terminal,
  });
  recordChaos({ kind: 'lost', experiment: name, runs: invariants.lost + invariants.doubled });
  recordChaos({ kind: 'containers', experiment: name, left: invariants.containersLeft });
  const runs = `${invariants.accepted} accepted, ${invariants.succeeded} succeeded, ${invariants.endedAsLost} ended as lost`;
  recordChaos({
    kind: 'fault',
    name,
    survived: problems.length === 0,
    detail: problems.length === 0 ? `${detail}; ${runs}` : problems.slice(0, 3).join('; '),
  });
  assert.deepEqual(problems, [], `${name}: ${detail}`);
}

async function waitForRunningOn(starterId: string, timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [row] = await pipeline.query<{ running: number }>(
      `SELECT COUNT(*) AS running FROM script_log s JOIN run_detail d ON d.run_id = s.id
       WHERE s.state = 'running' AND d.starter_id = ?`,
      [starterId],
    );
    if (Number(row?.running) > 0) return Number(row?.running);
    await sleep(100);
  }
  throw new Error(`no run was running on ${starterId} within ${timeoutMs} ms`);
}

async function finishedBy(starterId: string, since: Date): Promise<number> {
  const [row] = await pipeline.query<{ runs: number }>(
    `SELECT COUNT(*) AS runs FROM script_log s JOIN run_detail d ON d.run_id = s.id
     WHERE d.starter_id = ? AND s.success = 1 AND s.finished_at > ?`,
    [starterId, since.toISOString().replace('T', ' ').replace('Z', '')],
  );
  return Number(row?.runs ?? 0);
}

async function runningRuns(): Promise<number[]> {
  const rows = await pipeline.query<{ id: number }>(
    "SELECT id FROM script_log WHERE state = 'running'",
  );
  return rows.map((row) => Number(row.id));
}

function totalFetches(): number {
  return load.submissions.reduce(
    (sum, submission) => sum + pipeline.standin.fetchCount(submission.scriptName),
    0,
  );
}

describe(`chaos experiments (${profile.name} profile)`, {
  skip: !canRunSecondEngine && 'needs root and dockerd',
}, () => {
  test('a starter killed mid-run with SIGKILL and restarted', async () => {
    const [starterId, starter] = [...pipeline.starters][0] ?? [];
    assert.ok(starterId && starter);
    await experiment('starter SIGKILL mid-run, restart', async () => {
      const running = await waitForRunningOn(starterId);
      await starter.kill('SIGKILL');
      // At once, under the same STARTER_ID: the claims carry the starter's life, so the
      // watchdog tells the new life from the one that held the runs.
      const restartedAt = new Date();
      starter.start();
      await pipeline.waitForFleet(2);
      return {
        detail: `killed holding ${running} running runs`,
        afterDrain: async () => {
          const after = await finishedBy(starterId, restartedAt);
          if (after === 0) throw new Error('the restarted starter ran nothing');
          return `its next life ran ${after}`;
        },
      };
    });
  });

  test('the scheduler killed with SIGKILL during submissions and restarted', async () => {
    await experiment('scheduler SIGKILL, restart', async () => {
      const answeredBefore = load.submissions.length;
      await pipeline.scheduler.kill('SIGKILL');
      await sleep(2_000);
      await pipeline.startScheduler();
      await sleep(profile.loadAfterMs);
      const resent = load
        .of('scheduler SIGKILL, restart')
        .filter((submission) => submission.answers.length > 1);
      const withoutFirstAnswer = resent.filter((submission) => submission.id === undefined);
      if (withoutFirstAnswer.length > 0) {
        throw new Error(`${withoutFirstAnswer.length} resent submissions have no id`);
      }
      return {
        detail: `${resent.length} submissions resent with their Idempotency-Key (of ${load.submissions.length - answeredBefore} during the outage and after), each got one run`,
      };
    });
  });

  test('the NATS server restarted on its port and store', async () => {
    await experiment('NATS server restart', async () => {
      const pids = [pipeline.scheduler, ...pipeline.starters.values()].map(
        (service) => service.pid,
      );
      await pipeline.nats.restart(profile.natsDownMs);
      await sleep(profile.loadAfterMs);
      const now = [pipeline.scheduler, ...pipeline.starters.values()].map((service) => service.pid);
      if (JSON.stringify(now) !== JSON.stringify(pids)) {
        throw new Error(`a service did not survive the restart: ${pids} → ${now}`);
      }
      return {
        detail: `down ${profile.natsDownMs / 1000} s; scheduler and starters kept running and reconnected`,
      };
    });
  });

  test('MariaDB stopped, then started again', async () => {
    const name = 'MariaDB stopped';
    await experiment(name, async () => {
      const [earlier] = load.of(name).filter((submission) => submission.id !== undefined);
      assert.ok(earlier, 'a run submitted before the outage');
      const inProgress = await runningRuns();
      const fetchesBefore = totalFetches();
      const stoppedAt = Date.now();
      let pollText = '';
      await pipeline.mariadb.stop();
      try {
        await sleep(2_000);
        const poll = await pipeline.request(
          `/run-script/${earlier.id}/?dtable_uuid=${baseUuid}&script_name=${earlier.scriptName}`,
        );
        pollText = await poll.text();
        if (poll.status !== 503 || !/unavailable/i.test(pollText)) {
          throw new Error(`a poll during the outage answered ${poll.status} ${pollText}`);
        }
        await sleep(Math.max(0, profile.databaseDownMs - (Date.now() - stoppedAt)));
      } finally {
        await pipeline.mariadb.start();
      }
      const fetchesDuring = totalFetches() - fetchesBefore;
      const restartedAt = Date.now();
      const duringOutage = load
        .of(name)
        .filter((submission) => submission.sentAt >= stoppedAt && submission.sentAt < restartedAt);
      const acceptedAtOnce = duringOutage.filter(
        (submission) => !submission.limited && submission.answers[0]?.status === 200,
      ).length;
      const limitedAnswers = duringOutage
        .filter((submission) => submission.limited)
        .map((submission) => submission.answers[0]);
      const unexplained = limitedAnswers.filter(
        (answer) =>
          answer &&
          answer.status !== 200 &&
          !(answer.status === 503 && /unavailable/i.test(answer.text)),
      );
      if (acceptedAtOnce === 0) throw new Error('no submission was accepted during the outage');
      if (unexplained.length > 0) {
        throw new Error(
          `a limited submission answered ${unexplained[0]?.status} ${unexplained[0]?.text}`,
        );
      }
      return {
        detail: `down ${profile.databaseDownMs / 1000} s: ${acceptedAtOnce} accepted at once, ${limitedAnswers.length} with a limit told 503, polls told "${pollText.slice(0, 60)}"`,
        afterDrain: async () => {
          // Fair share is let through while the database is away, so runs keep starting.
          if (fetchesDuring === 0) throw new Error('no new run started during the outage');
          const failed = await pipeline.query<{ id: number }>(
            `SELECT id FROM script_log WHERE id IN (${inProgress.map(() => '?').join(',') || 'NULL'})
             AND (state <> 'finished' OR success <> 1)`,
            inProgress,
          );
          if (failed.length > 0) {
            throw new Error(
              `runs in progress at the outage did not succeed: ${failed.map((row) => row.id)}`,
            );
          }
          return `the ${inProgress.length} runs in progress finished; ${fetchesDuring} new runs started during the outage`;
        },
      };
    });
  });

  test('the Docker engine under a starter restarted', {
    skip: !profile.engineRestart && 'left out by CHAOS_ENGINE_RESTART=0',
  }, async () => {
    const starterId = pipeline.engineStarterId;
    const starter = pipeline.starters.get(starterId);
    assert.ok(starter);
    await experiment('Docker engine restart', async () => {
      const pid = starter.pid;
      const running = await waitForRunningOn(starterId);
      await pipeline.engine.restart(profile.engineDownMs);
      const restartedAt = new Date();
      return {
        detail: `restarted holding ${running} running runs`,
        afterDrain: async () => {
          if (starter.pid !== pid)
            throw new Error('the starter did not survive the engine restart');
          const after = await finishedBy(starterId, restartedAt);
          if (after === 0) throw new Error('the starter ran nothing on the restarted engine');
          return `${after} ran on it afterwards`;
        },
      };
    });
  });

  test('the SeaTable stand-in slow or failing on every call', async () => {
    await experiment('SeaTable slow, 500, bad JSON, dropped', async () => {
      const faults = [
        { delayMs: 12_000, times: 2 },
        { status: 500, times: 4 },
        { badJson: true, times: 4 },
        { drop: true, times: 2 },
        { status: 503, times: 2 },
      ];
      for (const fault of faults) {
        pipeline.standin.failNext('task-file', fault);
        pipeline.standin.failNext('script-file', fault);
        pipeline.standin.failNext('running-limit', fault);
        pipeline.standin.failNext('notifications', fault);
      }
      // Submissions that ask SeaTable for the owner's limit (`scripts_running_limit` 0).
      const answers: number[] = [];
      const faulty = faults.reduce((sum, fault) => sum + fault.times, 0);
      for (let index = 0; index < faulty + 2; index++) {
        const response = await pipeline.request('/run-script/', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({
            dtable_uuid: baseUuid,
            script_name: 'limit-asked.py',
            owner: `asks-limit-${index}@example.invalid`,
            org_id: -1,
            scripts_running_limit: 0,
          }),
        });
        const text = await response.text();
        answers.push(response.status);
        if (response.status >= 500 && response.status !== 503) {
          throw new Error(
            `a submission that asked for its limit answered ${response.status} ${text}`,
          );
        }
      }
      if (answers.slice(-2).some((status) => status !== 200)) {
        throw new Error(`limit lookups still refused once SeaTable answered: ${answers}`);
      }
      return {
        detail: `task-file, script-file, running-limit, notifications: 12 s delays, 500, bad JSON, dropped connections, 503; limit lookups answered ${answers.join(' ')}`,
      };
    });
  });
});
