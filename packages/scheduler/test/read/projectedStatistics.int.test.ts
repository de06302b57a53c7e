import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunEvent } from '@pipeline/events';
import { pino } from 'pino';
import { inTransaction } from '../../src/db/sql.ts';
import { applyRunEvent } from '../../src/projection/applyRunEvent.ts';
import {
  baseA,
  baseB,
  bodyOf,
  type ReadFixture,
  startReadFixture,
  timeZone,
} from './readFixture.ts';

/**
 * The read side over rows the real projector wrote: each run is requested, started and
 * finished through `applyRunEvent`, as the log would deliver it.
 */
interface ProjectedRun {
  id: number;
  dtableUuid: string;
  owner: string;
  orgId: number;
  startedAt: string | null;
  finishedAt: string;
}

const runs: ProjectedRun[] = [
  // 23:30 UTC on 30 November: 00:30 on 1 December in Berlin.
  {
    id: 1,
    dtableUuid: baseA,
    owner: 'alice@example.invalid',
    orgId: 42,
    startedAt: '2026-11-30T23:29:50Z',
    finishedAt: '2026-11-30T23:30:00Z',
  },
  {
    id: 2,
    dtableUuid: baseA,
    owner: 'alice@example.invalid',
    orgId: 42,
    startedAt: '2026-11-30T22:00:00Z',
    finishedAt: '2026-11-30T22:00:30Z',
  },
  {
    id: 3,
    dtableUuid: baseB,
    owner: 'bob@example.invalid',
    orgId: -1,
    startedAt: '2026-12-02T09:00:00Z',
    finishedAt: '2026-12-02T09:00:04.500Z',
  },
  {
    id: 4,
    dtableUuid: baseB,
    owner: 'team@seafile_group',
    orgId: -1,
    startedAt: '2026-12-02T10:00:00Z',
    finishedAt: '2026-12-02T10:00:02Z',
  },
  // Never started (the script could not be fetched): finished, but not counted.
  {
    id: 5,
    dtableUuid: baseB,
    owner: 'bob@example.invalid',
    orgId: -1,
    startedAt: null,
    finishedAt: '2026-12-02T11:00:00Z',
  },
];

function eventsOf(run: ProjectedRun): RunEvent[] {
  const requestedAt = new Date(Date.parse(run.startedAt ?? run.finishedAt) - 1000).toISOString();
  return [
    {
      type: 'RunRequested',
      schemaVersion: 1,
      occurredAt: requestedAt,
      data: {
        dtableUuid: run.dtableUuid,
        scriptName: 't.py',
        owner: run.owner,
        orgId: run.orgId,
        contextData: null,
        operateFrom: 'manualy',
        operator: null,
      },
    },
    {
      type: 'RunFinished',
      schemaVersion: 1,
      occurredAt: run.finishedAt,
      runId: run.id,
      data: {
        success: run.startedAt !== null,
        returnCode: run.startedAt !== null ? 0 : -1,
        output: run.startedAt !== null ? 'ok\n' : 'Fail to get script',
        outputChunks: 0,
        outputTruncated: false,
        startedAt: run.startedAt,
        finishedAt: run.finishedAt,
        durationMs: 0,
        timedOut: false,
        outOfMemory: false,
        cancelled: false,
        lost: false,
        starterId: run.startedAt !== null ? 'starter-1' : null,
      },
    },
  ] as RunEvent[];
}

let fixture: ReadFixture;

before(async () => {
  fixture = await startReadFixture('projected_statistics');
  const context = { timeZone, logger: pino({ level: 'silent' }) };
  for (const run of runs) {
    for (const event of eventsOf(run)) {
      await inTransaction(fixture.orm, (sql) => applyRunEvent(sql, run.id, event, context));
    }
  }
});

after(async () => {
  await fixture.close();
});

describe('statistics of projected runs', () => {
  test('counts a run finished at 23:30 UTC on 30 November in December in Berlin', async () => {
    const december = await fixture.get(
      '/scripts-running-count/?username=alice@example.invalid&month=2026-12',
    );
    const november = await fixture.get(
      '/scripts-running-count/?username=alice@example.invalid&month=2026-11',
    );
    const byDay = bodyOf<{ results: { date: string; number_of_runs: number }[] }>(
      await fixture.get('/admin/statistics/by-day/?org_id=42'),
    );

    assert.deepEqual(bodyOf(december), { count: 1 });
    assert.deepEqual(bodyOf(november), { count: 1 });
    assert.deepEqual(
      byDay.results.map((day) => [day.date, day.number_of_runs]),
      [
        ['2026-11-30', 1],
        ['2026-12-01', 1],
      ],
    );
  });

  test('lists the finished runs, the unstarted one included, without a 500', async () => {
    const byBase = bodyOf<{ results: Record<string, unknown>[] }>(
      await fixture.get('/admin/statistics/by-base/?org_id=-1'),
    );

    assert.deepEqual(byBase.results, [
      {
        base_uuid: baseB,
        number_of_runs: 3,
        total_run_time: 7,
        triggered_manually: 3,
        triggered_by_automation_rule: 0,
        successful_runs: 2,
        unsuccessful_runs: 1,
      },
    ]);
  });

  test('gives the monthly lists the sums of the daily rows the projector wrote', async () => {
    const byUser = bodyOf(
      await fixture.get('/admin/statistics/scripts-running/by-user/?month=2026-12'),
    );
    const byOrg = bodyOf(
      await fixture.get('/admin/statistics/scripts-running/by-org/?month=2026-12'),
    );
    const byBase = bodyOf(
      await fixture.get('/admin/statistics/scripts-running/by-base/?month=2026-12'),
    );

    assert.deepEqual(byUser, {
      month: '2026-12',
      count: 2,
      results: [
        { username: 'alice@example.invalid', total_run_count: 1, total_run_time: 10 },
        { username: 'bob@example.invalid', total_run_count: 1, total_run_time: 5 },
      ],
    });
    assert.deepEqual(byOrg, {
      month: '2026-12',
      count: 1,
      results: [{ org_id: 42, total_run_count: 1, total_run_time: 10 }],
    });
    assert.deepEqual(byBase, {
      month: '2026-12',
      count: 2,
      results: [
        { base_uuid: baseB, total_run_count: 2, total_run_time: 7 },
        { base_uuid: baseA, total_run_count: 1, total_run_time: 10 },
      ],
    });
  });
});
