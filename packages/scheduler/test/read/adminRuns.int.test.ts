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

interface RunList {
  runs: Record<string, unknown>[];
  total_count: number;
}

let fixture: ReadFixture;

const list = async (query: string) => {
  const response = await fixture.get(`/admin/runs/${query}`);
  assert.equal(response.statusCode, 200, query);
  return bodyOf<RunList>(response);
};
const idsOf = (body: RunList) => body.runs.map((run) => run.id);

before(async () => {
  fixture = await startReadFixture('admin_runs');
  await seedRuns(fixture.db, [
    // Berlin: 30 November 23:59:59, the last second before December.
    {
      id: 1,
      org_id: 42,
      created_at: '2026-11-30 22:59:59',
      finished_at: '2026-11-30 23:00:30',
      started_at: '2026-11-30 23:00:00',
      success: true,
      return_code: 0,
    },
    // Berlin: 1 December 00:00:00.
    { id: 2, org_id: 42, created_at: '2026-11-30 23:00:00' },
    // Berlin: 1 December 23:59:59.5.
    { id: 3, org_id: 42, dtable_uuid: baseB, created_at: '2026-12-01 22:59:59.500000' },
    // Berlin: 2 December 00:00:00.
    {
      id: 4,
      org_id: 7,
      dtable_uuid: baseC,
      created_at: '2026-12-01 23:00:00',
      output: 'x',
      context_data: '{"a":1}',
    },
    {
      id: 5,
      org_id: -1,
      created_at: '2026-12-03 10:00:00',
      context_data: '{"row":{}}',
      output: 'big output',
    },
    // A row from an original installation that predates `created_at`.
    {
      id: 6,
      org_id: 42,
      created_at: null,
      started_at: '2026-10-01 10:00:00',
      finished_at: '2026-10-01 10:00:01',
    },
  ]);
  await seedRuns(
    fixture.db,
    Array.from({ length: 120 }, (_, index) => ({
      id: 1000 + index,
      org_id: 900,
      created_at: '2026-11-15 12:00:00',
    })),
  );
});

after(async () => {
  await fixture.close();
});

describe('GET /admin/runs/', () => {
  test('lists runs newest first without context_data and output', async () => {
    const body = await list('?per_page=6');

    assert.equal(body.total_count, 126);
    assert.deepEqual(idsOf(body), [5, 4, 3, 2, 1, 1119]);
    assert.deepEqual(body.runs[0], {
      id: 5,
      dtable_uuid: baseA,
      owner: 'user-a@example.invalid',
      org_id: -1,
      script_name: 't.py',
      started_at: '',
      finished_at: null,
      success: null,
      return_code: null,
      operate_from: 'manualy',
      state: 'pending',
      created_at: '2026-12-03T11:00:00+01:00',
    });
    assert.equal(body.runs[4]?.finished_at, '2026-12-01T00:00:30+01:00');
    assert.equal(body.runs[4]?.success, true);
  });

  test('answers 100 runs per page by default and up to 1000 on request', async () => {
    const byDefault = await list('?org_id=900');
    const large = await list('?org_id=900&per_page=1000');

    assert.equal(byDefault.runs.length, 100);
    assert.equal(byDefault.total_count, 120);
    assert.equal(large.runs.length, 120);
  });

  test('filters by org and lists legacy rows without a request time last', async () => {
    const body = await list('?org_id=42');

    assert.deepEqual(idsOf(body), [3, 2, 1, 6]);
    assert.equal(body.total_count, 4);
  });

  test('filters by base in any uuid form (BC-11)', async () => {
    for (const form of [
      baseA,
      baseA.replaceAll('-', ''),
      baseA.replaceAll('-', '').toUpperCase(),
    ]) {
      const body = await list(`?base_uuid=${form}&org_id=42`);
      assert.deepEqual(idsOf(body), [2, 1, 6], form);
    }
  });

  test('starts a plain start date at midnight in the configured zone', async () => {
    const body = await list('?start=2026-12-01');

    assert.deepEqual(idsOf(body), [5, 4, 3, 2]);
    assert.equal(body.total_count, 4);
  });

  test('includes the whole day of a plain end date and nothing after it', async () => {
    assert.deepEqual(idsOf(await list('?end=2026-12-01&org_id=42')), [3, 2, 1]);
    assert.deepEqual(idsOf(await list('?start=2026-12-01&end=2026-12-01')), [3, 2]);
    assert.deepEqual(idsOf(await list('?start=2026-12-02&end=2026-12-02')), [4]);
  });

  test('reads date-times with an offset, with Z, and without an offset as local time', async () => {
    assert.deepEqual(idsOf(await list('?start=2026-12-01T00:00:00Z')), [5, 4, 3]);
    assert.deepEqual(idsOf(await list('?start=2026-12-01T00:00:00%2B01:00')), [5, 4, 3, 2]);
    // An unencoded "+" arrives as a space.
    assert.deepEqual(idsOf(await list('?start=2026-12-01T00:00:00+01:00')), [5, 4, 3, 2]);
    assert.deepEqual(idsOf(await list('?start=2026-12-01T00:00')), [5, 4, 3, 2]);
    assert.deepEqual(idsOf(await list('?start=2026-12-01 00:00:00.000')), [5, 4, 3, 2]);
  });

  test('excludes the instant of a date-time end', async () => {
    assert.deepEqual(idsOf(await list('?org_id=42&end=2026-11-30T23:00:00Z')), [1]);
    assert.deepEqual(idsOf(await list('?org_id=42&end=2026-11-30T23:00:00.001Z')), [2, 1]);
  });

  test('answers an empty page with the total count beyond the last page', async () => {
    assert.deepEqual(idsOf(await list('?org_id=42&per_page=2&page=2')), [1, 6]);
    assert.deepEqual(await list('?org_id=42&per_page=2&page=3'), { runs: [], total_count: 4 });
  });

  test('answers an empty list for a range that ends before it starts', async () => {
    assert.deepEqual(await list('?start=2026-12-02&end=2026-12-01'), { runs: [], total_count: 0 });
  });

  test('refuses bad dates, pages and ids with 400 and a JSON error, never 500', async () => {
    for (const query of [
      '?start=2026-13-01',
      '?start=yesterday',
      '?end=2026-02-30',
      '?end=2026-12-01T25:00',
      '?start=2026-12-01T10:00:00+25:00',
      '?page=abc',
      '?page=0',
      '?per_page=x',
      '?per_page=1001',
      '?org_id=abc',
      '?base_uuid=not-a-uuid',
    ]) {
      const response = await fixture.get(`/admin/runs/${query}`);
      assert.equal(response.statusCode, 400, query);
      const body = bodyOf<{ error: unknown }>(response);
      assert.equal(typeof body.error, 'string', query);
    }
  });
});
