import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  addDays,
  instantOfWallClock,
  monthDays,
  offsetMinutesAt,
  offsetStretches,
  sqlUtc,
} from '../../src/http/read/zonedTime.ts';

describe('instantOfWallClock', () => {
  test('maps a Berlin winter and summer wall-clock time to UTC', () => {
    assert.equal(
      instantOfWallClock({ year: 2026, month: 12, day: 1 }, 'Europe/Berlin').toISOString(),
      '2026-11-30T23:00:00.000Z',
    );
    assert.equal(
      instantOfWallClock(
        { year: 2026, month: 7, day: 1, hour: 12, minute: 30 },
        'Europe/Berlin',
      ).toISOString(),
      '2026-07-01T10:30:00.000Z',
    );
  });

  test('maps a time the clocks skip to the same distance after the gap', () => {
    // Berlin jumps from 02:00 to 03:00 on 29 March 2026.
    const skipped = instantOfWallClock(
      { year: 2026, month: 3, day: 29, hour: 2, minute: 30 },
      'Europe/Berlin',
    );

    assert.equal(skipped.toISOString(), '2026-03-29T01:30:00.000Z');
  });

  test('maps a time the clocks show twice to the first of the two', () => {
    // Berlin shows 02:30 twice on 25 October 2026: at 00:30 and at 01:30 UTC.
    const repeated = instantOfWallClock(
      { year: 2026, month: 10, day: 25, hour: 2, minute: 30 },
      'Europe/Berlin',
    );

    assert.equal(repeated.toISOString(), '2026-10-25T00:30:00.000Z');
  });

  test('finds the first instant of a day whose midnight is skipped', () => {
    // Santiago moves its clocks from 00:00 to 01:00 on 6 September 2026.
    const dayStart = instantOfWallClock({ year: 2026, month: 9, day: 6 }, 'America/Santiago');

    assert.equal(dayStart.toISOString(), '2026-09-06T04:00:00.000Z');
    assert.equal(offsetMinutesAt(dayStart, 'America/Santiago'), -180);
  });

  test('handles zones a quarter of an hour off the hour', () => {
    assert.equal(
      instantOfWallClock({ year: 2026, month: 12, day: 4 }, 'Asia/Kathmandu').toISOString(),
      '2026-12-03T18:15:00.000Z',
    );
  });
});

describe('offsetStretches', () => {
  test('answers one stretch when the offset does not change', () => {
    assert.deepEqual(
      offsetStretches(
        new Date('2026-12-01T00:00:00Z'),
        new Date('2026-12-31T00:00:00Z'),
        'Europe/Berlin',
      ),
      [{ until: null, offsetMinutes: 60 }],
    );
  });

  test('finds both daylight saving changes of a year to the second', () => {
    const stretches = offsetStretches(
      new Date('2026-01-01T00:00:00Z'),
      new Date('2026-12-31T00:00:00Z'),
      'Europe/Berlin',
    );

    assert.deepEqual(
      stretches.map((stretch) => [stretch.until?.toISOString() ?? null, stretch.offsetMinutes]),
      [
        ['2026-03-29T01:00:00.000Z', 60],
        ['2026-10-25T01:00:00.000Z', 120],
        [null, 60],
      ],
    );
  });
});

describe('calendar helpers', () => {
  test('steps across month and year ends', () => {
    assert.equal(addDays('2026-12-31', 1), '2027-01-01');
    assert.equal(addDays('2026-03-01', -1), '2026-02-28');
    assert.equal(addDays('2026-12-04', -90), '2026-09-05');
  });

  test('answers the first day of a month and of the next', () => {
    assert.deepEqual(monthDays('2026-12'), { first: '2026-12-01', next: '2027-01-01' });
    assert.deepEqual(monthDays('2028-02'), { first: '2028-02-01', next: '2028-03-01' });
  });

  test('writes an instant as a UTC datetime(6) literal', () => {
    assert.equal(sqlUtc(new Date('2026-12-04T13:03:07.250Z')), '2026-12-04 13:03:07.250000');
  });
});
