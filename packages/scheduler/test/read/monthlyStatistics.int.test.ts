import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  baseA,
  baseB,
  baseC,
  bodyOf,
  now,
  type ReadFixture,
  seedStatistics,
  startReadFixture,
} from './readFixture.ts';

interface MonthlyTotals {
  month: string;
  count: number;
  results: Record<string, string | number>[];
}

let fixture: ReadFixture;

before(async () => {
  fixture = await startReadFixture('monthly_statistics');
  await seedStatistics(fixture, 'user_run_script_statistics', [
    { owner: 'alice@example.invalid', day: '2026-11-30', count: 5, time: 100 },
    { owner: 'alice@example.invalid', day: '2026-12-01', count: 2, time: 10.4 },
    { owner: 'alice@example.invalid', day: '2026-12-04', count: 3, time: 20.3 },
    { owner: 'bob@example.invalid', day: '2026-12-02', count: 7, time: 5.2 },
    { owner: 'carol@example.invalid', day: '2026-12-31', count: 1, time: 1 },
    { owner: 'carol@example.invalid', day: '2027-01-01', count: 4, time: 4 },
    { owner: 'dave@example.invalid', day: '2026-12-03', count: 5, time: 40, orgId: 42 },
  ]);
  await seedStatistics(fixture, 'org_run_script_statistics', [
    { owner: 42, day: '2026-11-30', count: 8, time: 1 },
    { owner: 42, day: '2026-12-01', count: 3, time: 30 },
    { owner: 7, day: '2026-12-02', count: 10, time: 5 },
    // Left by an older version: org -1 means "no org" and is no org of its own.
    { owner: -1, day: '2026-12-02', count: 99, time: 99 },
  ]);
  await seedStatistics(fixture, 'dtable_run_script_statistics', [
    { owner: baseA, day: '2026-12-01', count: 2, time: 3 },
    { owner: baseA, day: '2026-12-02', count: 1, time: 1 },
    { owner: baseB, day: '2026-12-02', count: 6, time: 2 },
    { owner: baseC, day: '2026-11-30', count: 1, time: 1 },
  ]);
});

after(async () => {
  await fixture.close();
});

describe('GET /scripts-running-count/', () => {
  const countOf = async (query: string) => {
    const response = await fixture.get(`/scripts-running-count/?${query}`);
    assert.equal(response.statusCode, 200, query);
    return bodyOf<{ count: number }>(response).count;
  };

  test("sums the user's runs of the month", async () => {
    assert.equal(await countOf('username=alice@example.invalid&month=2026-12'), 5);
    assert.equal(await countOf('username=alice@example.invalid&month=2026-11'), 5);
    assert.equal(await countOf('username=alice@example.invalid&month=2026-10'), 0);
  });

  test('takes the current month in the configured zone when none is given', async () => {
    const fourthOfDecember = await fixture.appAt(now);
    const current = await fourthOfDecember.inject(
      '/scripts-running-count/?username=alice@example.invalid',
    );
    assert.deepEqual(bodyOf(current), { count: 5 });

    const lateNovemberUtc = await fixture.appAt(new Date('2026-11-30T23:30:00Z'));
    const response = await lateNovemberUtc.inject(
      '/scripts-running-count/?username=carol@example.invalid',
    );
    assert.deepEqual(bodyOf(response), { count: 1 });
  });

  test('counts the last day of the month and not the first day of the next', async () => {
    assert.equal(await countOf('username=carol@example.invalid&month=2026-12'), 1);
    assert.equal(await countOf('username=carol@example.invalid&month=2027-01'), 4);
  });

  test("sums the org's runs when org_id is given, even with a username", async () => {
    assert.equal(await countOf('org_id=42&month=2026-12'), 3);
    assert.equal(await countOf('org_id=42&username=alice@example.invalid&month=2026-12'), 3);
    assert.equal(await countOf('org_id=7&month=2026-12'), 10);
  });

  test('accepts a one-digit month as Python does', async () => {
    assert.equal(await countOf('username=carol@example.invalid&month=2027-1'), 4);
  });

  test('answers an owner without statistics with count 0', async () => {
    assert.equal(await countOf('username=team@seafile_group&month=2026-12'), 0);
  });

  test('refuses bad input with the original plain-text messages', async () => {
    for (const [query, text] of [
      ['month=2026-12', 'username or org_id invalid.'],
      ['username=&org_id=', 'username or org_id invalid.'],
      ['org_id=abc', 'org_id invalid.'],
      ['org_id=-1', 'org_id invalid.'],
      ['org_id=4.2', 'org_id invalid.'],
      ['username=alice@example.invalid&month=2026-13', 'month invalid.'],
      ['username=alice@example.invalid&month=december', 'month invalid.'],
      ['username=alice@example.invalid&month=2026-12-01', 'month invalid.'],
    ]) {
      const response = await fixture.get(`/scripts-running-count/?${query}`);
      assert.equal(response.statusCode, 400, query);
      assert.equal(response.body, text, query);
      assert.match(String(response.headers['content-type']), /^text\/html/);
    }
  });
});

describe('GET /admin/statistics/scripts-running/by-user/', () => {
  const byUser = async (query: string) => {
    const response = await fixture.get(`/admin/statistics/scripts-running/by-user/?${query}`);
    assert.equal(response.statusCode, 200, query);
    return bodyOf<MonthlyTotals>(response);
  };
  const usernames = (totals: MonthlyTotals) => totals.results.map((row) => row.username);

  test("answers the month's totals per user, whole seconds, in username order", async () => {
    assert.deepEqual(await byUser('month=2026-12'), {
      month: '2026-12',
      count: 4,
      results: [
        { username: 'alice@example.invalid', total_run_count: 5, total_run_time: 31 },
        { username: 'bob@example.invalid', total_run_count: 7, total_run_time: 5 },
        { username: 'carol@example.invalid', total_run_count: 1, total_run_time: 1 },
        { username: 'dave@example.invalid', total_run_count: 5, total_run_time: 40 },
      ],
    });
  });

  test('defaults to the current month', async () => {
    const fourthOfDecember = await fixture.appAt(now);
    const totals = bodyOf<MonthlyTotals>(
      await fourthOfDecember.inject('/admin/statistics/scripts-running/by-user/'),
    );

    assert.equal(totals.month, '2026-12');
    assert.equal(totals.count, 4);
  });

  test('orders by a total ascending, and descending with a leading minus', async () => {
    assert.deepEqual(usernames(await byUser('month=2026-12&order_by=total_run_count')), [
      'carol@example.invalid',
      'alice@example.invalid',
      'dave@example.invalid',
      'bob@example.invalid',
    ]);
    assert.deepEqual(usernames(await byUser('month=2026-12&order_by=-total_run_count')), [
      'bob@example.invalid',
      'alice@example.invalid',
      'dave@example.invalid',
      'carol@example.invalid',
    ]);
  });

  test('orders descending with direction=desc, alone or together with a leading minus', async () => {
    const expected = [
      'dave@example.invalid',
      'alice@example.invalid',
      'bob@example.invalid',
      'carol@example.invalid',
    ];
    assert.deepEqual(
      usernames(await byUser('month=2026-12&order_by=total_run_time&direction=desc')),
      expected,
    );
    assert.deepEqual(
      usernames(await byUser('month=2026-12&order_by=-total_run_time&direction=desc')),
      expected,
    );
    assert.deepEqual(usernames(await byUser('month=2026-12&order_by=-total_run_time')), expected);
  });

  test('pages through the owners and keeps the distinct owner count', async () => {
    const second = await byUser('month=2026-12&order_by=-total_run_count&per_page=2&page=2');
    const beyond = await byUser('month=2026-12&per_page=2&page=3');

    assert.deepEqual(usernames(second), ['dave@example.invalid', 'carol@example.invalid']);
    assert.equal(second.count, 4);
    assert.deepEqual(beyond, { month: '2026-12', count: 4, results: [] });
  });

  test('answers another month with only its own days', async () => {
    assert.deepEqual(await byUser('month=2026-11'), {
      month: '2026-11',
      count: 1,
      results: [{ username: 'alice@example.invalid', total_run_count: 5, total_run_time: 100 }],
    });
  });

  test('refuses bad input with 400 and a plain-text reason, never 500', async () => {
    for (const [query, text] of [
      ['month=2026-00', 'month invalid.'],
      ['month=26-12', 'month invalid.'],
      ['order_by=username', 'order_by invalid.'],
      ['order_by=total_run_time-', 'order_by invalid.'],
      ['order_by=--total_run_time', 'order_by invalid.'],
      ['order_by=-total_run_time&direction=asc', 'direction invalid.'],
      ['order_by=total_run_time&direction=sideways', 'direction invalid.'],
    ]) {
      const response = await fixture.get(`/admin/statistics/scripts-running/by-user/?${query}`);
      assert.equal(response.statusCode, 400, query);
      assert.equal(response.body, text, query);
    }
    for (const query of ['page=0', 'page=x', 'per_page=-1', 'per_page=1001']) {
      const response = await fixture.get(`/admin/statistics/scripts-running/by-user/?${query}`);
      assert.equal(response.statusCode, 400, query);
    }
  });
});

describe('GET /admin/statistics/scripts-running/by-org/ and by-base/', () => {
  test('answers totals per org with numeric org ids and without org -1', async () => {
    const response = await fixture.get(
      '/admin/statistics/scripts-running/by-org/?month=2026-12&order_by=-total_run_count',
    );

    assert.equal(response.statusCode, 200);
    assert.deepEqual(bodyOf(response), {
      month: '2026-12',
      count: 2,
      results: [
        { org_id: 7, total_run_count: 10, total_run_time: 5 },
        { org_id: 42, total_run_count: 3, total_run_time: 30 },
      ],
    });
  });

  test('answers totals per base under base_uuid', async () => {
    const response = await fixture.get('/admin/statistics/scripts-running/by-base/?month=2026-12');

    assert.deepEqual(bodyOf(response), {
      month: '2026-12',
      count: 2,
      results: [
        { base_uuid: baseB, total_run_count: 6, total_run_time: 2 },
        { base_uuid: baseA, total_run_count: 3, total_run_time: 4 },
      ],
    });
  });

  test('refuses a bad month on both', async () => {
    for (const path of ['by-org', 'by-base']) {
      const response = await fixture.get(`/admin/statistics/scripts-running/${path}/?month=x`);
      assert.equal(response.statusCode, 400);
      assert.equal(response.body, 'month invalid.');
    }
  });
});
