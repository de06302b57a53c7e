import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  baseA,
  baseB,
  baseC,
  bodyOf,
  type ReadFixture,
  seedRuns,
  startReadFixture,
} from './readFixture.ts';

interface Statistics {
  results: Record<string, string | number>[];
  total_count: number;
}

let fixture: ReadFixture;

const statisticsOf = async (path: 'by-base' | 'by-day', query: string) => {
  const response = await fixture.get(`/admin/statistics/${path}/${query}`);
  assert.equal(response.statusCode, 200, query);
  return bodyOf<Statistics>(response);
};

before(async () => {
  fixture = await startReadFixture('run_statistics');
  await seedRuns(fixture.db, [
    // Finished 23:30 UTC on 30 November: 00:30 on 1 December in Berlin.
    {
      id: 1,
      org_id: 42,
      started_at: '2026-11-30 23:29:50',
      finished_at: '2026-11-30 23:30:00',
      success: true,
    },
    {
      id: 2,
      org_id: 42,
      started_at: '2026-12-01 10:00:00',
      finished_at: '2026-12-01 10:00:02.600000',
      success: false,
      operate_from: 'automation-rule',
    },
    // Refused before it started: finished, unsuccessful, no run time.
    { id: 3, org_id: 42, dtable_uuid: baseB, finished_at: '2026-12-01 12:00:00', success: false },
    // Still running, and still queued: not counted.
    { id: 4, org_id: 42, dtable_uuid: baseB, started_at: '2026-12-01 12:00:00' },
    { id: 5, org_id: 42, dtable_uuid: baseB },
    // 23:59 on 30 November in Berlin.
    {
      id: 6,
      org_id: 42,
      started_at: '2026-11-30 22:58:00',
      finished_at: '2026-11-30 22:59:00',
      success: true,
      operate_from: 'automation-rule',
    },
    {
      id: 7,
      org_id: 7,
      dtable_uuid: baseC,
      started_at: '2026-12-01 10:00:00',
      finished_at: '2026-12-01 10:00:05',
      success: true,
    },
    // Around the switch to summer time (01:00 UTC on 29 March 2026).
    {
      id: 8,
      org_id: 43,
      started_at: '2026-03-28 22:58:00',
      finished_at: '2026-03-28 22:59:00',
      success: true,
    },
    {
      id: 9,
      org_id: 43,
      started_at: '2026-03-28 23:29:00',
      finished_at: '2026-03-28 23:30:00',
      success: true,
    },
    {
      id: 10,
      org_id: 43,
      started_at: '2026-03-29 01:29:00',
      finished_at: '2026-03-29 01:30:00',
      success: true,
    },
    {
      id: 11,
      org_id: 43,
      started_at: '2026-03-29 21:59:00',
      finished_at: '2026-03-29 21:59:30',
      success: true,
    },
    {
      id: 12,
      org_id: 43,
      started_at: '2026-03-29 22:00:00',
      finished_at: '2026-03-29 22:00:30',
      success: true,
    },
  ]);
});

after(async () => {
  await fixture.close();
});

describe('GET /admin/statistics/by-base/', () => {
  test("counts an org's finished runs per base, run time in whole seconds", async () => {
    assert.deepEqual(await statisticsOf('by-base', '?org_id=42'), {
      results: [
        {
          base_uuid: baseB,
          number_of_runs: 1,
          total_run_time: 0,
          triggered_manually: 1,
          triggered_by_automation_rule: 0,
          successful_runs: 0,
          unsuccessful_runs: 1,
        },
        {
          base_uuid: baseA,
          number_of_runs: 3,
          total_run_time: 73,
          triggered_manually: 1,
          triggered_by_automation_rule: 2,
          successful_runs: 2,
          unsuccessful_runs: 1,
        },
      ],
      total_count: 2,
    });
  });

  test('counts a run on the day it finished in the configured zone', async () => {
    const december = await statisticsOf('by-base', '?org_id=42&start=2026-12-01');
    const november = await statisticsOf('by-base', '?org_id=42&end=2026-11-30');

    assert.deepEqual(
      december.results.map((row) => [row.base_uuid, row.number_of_runs, row.total_run_time]),
      [
        [baseB, 1, 0],
        [baseA, 2, 13],
      ],
    );
    assert.deepEqual(
      november.results.map((row) => [row.base_uuid, row.number_of_runs, row.total_run_time]),
      [[baseA, 1, 60]],
    );
  });

  test('pages through the bases', async () => {
    const second = await statisticsOf('by-base', '?org_id=42&per_page=1&page=2');
    const beyond = await statisticsOf('by-base', '?org_id=42&per_page=1&page=3');

    assert.deepEqual(
      second.results.map((row) => row.base_uuid),
      [baseA],
    );
    assert.equal(second.total_count, 2);
    assert.deepEqual(beyond, { results: [], total_count: 2 });
  });

  test('answers an org without runs with nothing', async () => {
    assert.deepEqual(await statisticsOf('by-base', '?org_id=1234'), {
      results: [],
      total_count: 0,
    });
  });
});

describe('GET /admin/statistics/by-day/', () => {
  test('counts finished runs per local day, oldest day first', async () => {
    assert.deepEqual(await statisticsOf('by-day', '?org_id=42'), {
      results: [
        {
          date: '2026-11-30',
          number_of_runs: 1,
          total_run_time: 60,
          triggered_manually: 0,
          triggered_by_automation_rule: 1,
          successful_runs: 1,
          unsuccessful_runs: 0,
        },
        {
          date: '2026-12-01',
          number_of_runs: 3,
          total_run_time: 13,
          triggered_manually: 2,
          triggered_by_automation_rule: 1,
          successful_runs: 1,
          unsuccessful_runs: 2,
        },
      ],
      total_count: 2,
    });
  });

  test('narrows to one base given in any uuid form', async () => {
    for (const form of [baseA, baseA.replaceAll('-', '').toUpperCase()]) {
      const body = await statisticsOf('by-day', `?org_id=42&base_uuid=${form}`);
      assert.deepEqual(
        body.results.map((row) => [row.date, row.number_of_runs]),
        [
          ['2026-11-30', 1],
          ['2026-12-01', 2],
        ],
        form,
      );
    }
  });

  test('finds the local day on both sides of a daylight saving change', async () => {
    const expected = [
      ['2026-03-28', 1],
      ['2026-03-29', 3],
      ['2026-03-30', 1],
    ];
    const fromTheData = await statisticsOf('by-day', '?org_id=43');
    const fromTheRange = await statisticsOf('by-day', '?org_id=43&start=2026-03-28&end=2026-03-30');
    const fromAWideRange = await statisticsOf(
      'by-day',
      '?org_id=43&start=1990-01-01&end=2040-12-31',
    );

    assert.deepEqual(
      fromTheData.results.map((row) => [row.date, row.number_of_runs]),
      expected,
    );
    assert.deepEqual(
      fromTheRange.results.map((row) => [row.date, row.number_of_runs]),
      expected,
    );
    assert.deepEqual(
      fromAWideRange.results.map((row) => [row.date, row.number_of_runs]),
      expected,
    );
    assert.equal(fromTheData.total_count, 3);
  });

  test('keeps to the range and pages through the days', async () => {
    const december = await statisticsOf('by-day', '?org_id=42&start=2026-12-01&end=2026-12-01');
    const secondPage = await statisticsOf('by-day', '?org_id=42&per_page=1&page=2');

    assert.deepEqual(
      december.results.map((row) => row.date),
      ['2026-12-01'],
    );
    assert.deepEqual(
      secondPage.results.map((row) => row.date),
      ['2026-12-01'],
    );
    assert.equal(secondPage.total_count, 2);
  });

  test('answers an org without finished runs with nothing', async () => {
    assert.deepEqual(await statisticsOf('by-day', '?org_id=1234'), { results: [], total_count: 0 });
    assert.deepEqual(await statisticsOf('by-day', '?org_id=42&start=2027-01-01'), {
      results: [],
      total_count: 0,
    });
  });
});

describe('invalid input on /admin/statistics/by-base/ and by-day/', () => {
  test('refuses a missing or bad org, bad dates, pages or base with 400 and a JSON error', async () => {
    for (const path of ['by-base', 'by-day']) {
      for (const query of [
        '',
        '?org_id=',
        '?org_id=abc',
        '?org_id=42&start=2026-12-32',
        '?org_id=42&end=soon',
        '?org_id=42&page=0',
        '?org_id=42&per_page=abc',
        '?org_id=42&per_page=5000',
      ]) {
        const response = await fixture.get(`/admin/statistics/${path}/${query}`);
        assert.equal(response.statusCode, 400, `${path}${query}`);
        assert.equal(typeof bodyOf<{ error: unknown }>(response).error, 'string');
      }
    }
    const badBase = await fixture.get('/admin/statistics/by-day/?org_id=42&base_uuid=abc');
    assert.equal(badBase.statusCode, 400);
  });
});
