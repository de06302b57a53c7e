import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { totalsOrder } from '../../src/http/read/monthlyStatisticsRoutes.ts';
import {
  monthValue,
  orgIdValue,
  positiveInteger,
  queryValue,
  rangeBoundValue,
  timeRangeValue,
} from '../../src/http/read/queryValues.ts';

const berlin = 'Europe/Berlin';
const instantOf = (raw: string) => {
  const parsed = rangeBoundValue(raw, 'start', berlin);
  return parsed.ok ? parsed.value.instant.toISOString() : parsed.reason;
};

describe('queryValue', () => {
  test('takes the first of a repeated parameter and treats an empty one as absent', () => {
    assert.equal(queryValue({ page: ['2', '3'] }, 'page'), '2');
    assert.equal(queryValue({ page: '' }, 'page'), undefined);
    assert.equal(queryValue(undefined, 'page'), undefined);
  });
});

describe('positiveInteger', () => {
  test('accepts whole numbers from 1 up to the maximum and falls back when absent', () => {
    assert.deepEqual(positiveInteger(undefined, 'page', 1), { ok: true, value: 1 });
    assert.deepEqual(positiveInteger(' 7 ', 'page', 1), { ok: true, value: 7 });
    assert.deepEqual(positiveInteger('1000', 'per_page', 20, 1000), { ok: true, value: 1000 });
  });

  test('refuses zero, negatives, fractions, words and values past the maximum', () => {
    for (const raw of ['0', '-1', '1.5', '1e3', 'abc', '0x10', '12345678901']) {
      assert.equal(positiveInteger(raw, 'page', 1).ok, false, raw);
    }
    assert.deepEqual(positiveInteger('1001', 'per_page', 20, 1000), {
      ok: false,
      reason: 'per_page cannot be greater than 1000',
    });
  });
});

describe('orgIdValue and monthValue', () => {
  test('reads org ids, -1 included, and refuses what is not an int', () => {
    assert.deepEqual(orgIdValue('-1'), { ok: true, value: -1 });
    assert.deepEqual(orgIdValue('42'), { ok: true, value: 42 });
    for (const raw of ['4.2', 'abc', '9999999999', ''])
      assert.equal(orgIdValue(raw).ok, false, raw);
  });

  test('normalises months to YYYY-MM and refuses others', () => {
    assert.deepEqual(monthValue('2026-1'), { ok: true, value: '2026-01' });
    assert.deepEqual(monthValue('2026-12'), { ok: true, value: '2026-12' });
    for (const raw of ['2026-13', '2026-00', '202612', '2026-12-01', 'Dec 2026']) {
      assert.equal(monthValue(raw).ok, false, raw);
    }
  });
});

describe('rangeBoundValue', () => {
  test('reads dates and offset-less date-times as Berlin wall-clock time', () => {
    assert.equal(instantOf('2026-12-01'), '2026-11-30T23:00:00.000Z');
    assert.equal(instantOf('2026-07-01T08:15'), '2026-07-01T06:15:00.000Z');
    assert.equal(instantOf('2026-07-01 08:15:30.5'), '2026-07-01T06:15:30.500Z');
  });

  test('reads Z, signed offsets and an offset whose plus arrived as a space', () => {
    assert.equal(instantOf('2026-12-01T10:00:00Z'), '2026-12-01T10:00:00.000Z');
    assert.equal(instantOf('2026-12-01T10:00:00-05:00'), '2026-12-01T15:00:00.000Z');
    assert.equal(instantOf('2026-12-01T10:00:00+0530'), '2026-12-01T04:30:00.000Z');
    assert.equal(instantOf('2026-12-01T10:00:00 01:00'), '2026-12-01T09:00:00.000Z');
  });

  test('refuses impossible dates and times', () => {
    for (const raw of [
      '2026-02-29',
      '2026-04-31',
      '2026-12-01T24:00',
      '2026-12-01T10:60',
      '2026-12-01T10:00+24:00',
      '12/01/2026',
      'now',
    ]) {
      assert.equal(rangeBoundValue(raw, 'start', berlin).ok, false, raw);
    }
  });
});

describe('timeRangeValue', () => {
  test('ends a plain end date where the next Berlin day begins', () => {
    const range = timeRangeValue({ start: '2026-10-25', end: '2026-10-25' }, berlin);

    assert.ok(range.ok);
    assert.equal(range.value.from?.toISOString(), '2026-10-24T22:00:00.000Z');
    // 25 October has 25 hours in Berlin.
    assert.equal(range.value.until?.toISOString(), '2026-10-25T23:00:00.000Z');
  });

  test('keeps a date-time end as the exclusive instant it names', () => {
    const range = timeRangeValue({ end: '2026-12-01T12:00:00Z' }, berlin);

    assert.ok(range.ok);
    assert.equal(range.value.from, null);
    assert.equal(range.value.until?.toISOString(), '2026-12-01T12:00:00.000Z');
  });
});

describe('totalsOrder', () => {
  test('combines a leading minus and direction=desc into one descending order', () => {
    assert.deepEqual(totalsOrder('-total_run_time', 'desc'), { ok: true, value: 'run_time DESC,' });
    assert.deepEqual(totalsOrder('total_run_time', 'DESC'), { ok: true, value: 'run_time DESC,' });
    assert.deepEqual(totalsOrder('total_run_count', undefined), {
      ok: true,
      value: 'run_count ASC,',
    });
    assert.deepEqual(totalsOrder(undefined, 'desc'), { ok: true, value: '' });
  });

  test('refuses a contradiction, an unknown field and an unknown direction', () => {
    assert.equal(totalsOrder('-total_run_time', 'asc').ok, false);
    assert.equal(totalsOrder('id', undefined).ok, false);
    assert.equal(totalsOrder('total_run_time', 'up').ok, false);
  });
});
