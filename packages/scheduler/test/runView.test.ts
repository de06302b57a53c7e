import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatTime, localDate, type ScriptLogRow, toRunView } from '../src/http/runView.ts';

const berlin = 'Europe/Berlin';

describe('formatTime', () => {
  test('writes a winter instant in Berlin with +01:00 and no fraction', () => {
    assert.equal(
      formatTime(new Date('2026-12-04T13:03:07.912Z'), berlin),
      '2026-12-04T14:03:07+01:00',
    );
  });

  test('writes a summer instant in Berlin with +02:00', () => {
    assert.equal(formatTime(new Date('2026-07-01T22:30:00Z'), berlin), '2026-07-02T00:30:00+02:00');
  });

  test('uses the offset in force at that instant across the autumn change', () => {
    assert.equal(formatTime(new Date('2026-10-25T00:59:59Z'), berlin), '2026-10-25T02:59:59+02:00');
    assert.equal(formatTime(new Date('2026-10-25T01:00:00Z'), berlin), '2026-10-25T02:00:00+01:00');
  });

  test('handles zones with half-hour and negative offsets', () => {
    assert.equal(
      formatTime(new Date('2026-01-15T12:00:00Z'), 'America/St_Johns'),
      '2026-01-15T08:30:00-03:30',
    );
    assert.equal(formatTime(new Date('2026-01-15T12:00:00Z'), 'UTC'), '2026-01-15T12:00:00+00:00');
  });

  test('reads driver text as UTC, with or without microseconds', () => {
    assert.equal(formatTime('2026-12-04 13:03:07.999999', berlin), '2026-12-04T14:03:07+01:00');
    assert.equal(formatTime('2026-12-31 23:30:00', berlin), '2027-01-01T00:30:00+01:00');
  });

  test('keeps an unset time unset', () => {
    assert.equal(formatTime(null, berlin), null);
  });
});

describe('localDate', () => {
  test('gives the Berlin calendar day of an instant just after local midnight', () => {
    assert.equal(localDate(new Date('2026-03-09T23:30:00Z'), berlin), '2026-03-10');
    assert.equal(localDate(new Date('2026-03-09T22:59:59Z'), berlin), '2026-03-09');
  });
});

describe('toRunView', () => {
  const pendingRow: ScriptLogRow = {
    id: 17,
    dtable_uuid: '6a1f3c2e-9b7d-4e21-8f0a-0c5d2b7e9a11',
    owner: 'user-a@example.invalid',
    org_id: -1,
    script_name: 'Report März 😀.py',
    context_data: '{"row":{"Name":"Zoë"}}',
    started_at: null,
    finished_at: null,
    success: null,
    return_code: null,
    output: null,
    operate_from: 'manualy',
    state: 'pending',
    created_at: new Date('2026-12-04T13:03:07Z'),
  };

  test('turns a pending row into the contract object with an empty started_at', () => {
    assert.deepEqual(toRunView(pendingRow, berlin), {
      id: 17,
      dtable_uuid: '6a1f3c2e-9b7d-4e21-8f0a-0c5d2b7e9a11',
      owner: 'user-a@example.invalid',
      org_id: -1,
      script_name: 'Report März 😀.py',
      context_data: { row: { Name: 'Zoë' } },
      started_at: '',
      finished_at: null,
      success: null,
      return_code: null,
      output: null,
      operate_from: 'manualy',
      state: 'pending',
      created_at: '2026-12-04T14:03:07+01:00',
    });
  });

  test('turns a finished row into booleans, numbers and zoned times', () => {
    const view = toRunView(
      {
        ...pendingRow,
        id: '18',
        context_data: null,
        started_at: new Date('2026-12-04T13:03:08Z'),
        finished_at: new Date('2026-12-04T13:03:10Z'),
        success: 0,
        return_code: 1,
        output: 'Traceback\n',
        state: 'finished',
      },
      berlin,
    );
    assert.equal(view.id, 18);
    assert.equal(view.context_data, null);
    assert.equal(view.success, false);
    assert.equal(view.return_code, 1);
    assert.equal(view.started_at, '2026-12-04T14:03:08+01:00');
    assert.equal(view.finished_at, '2026-12-04T14:03:10+01:00');
  });

  test('answers null context_data for stored text that is not a JSON object', () => {
    assert.equal(toRunView({ ...pendingRow, context_data: '["a"]' }, berlin).context_data, null);
    assert.equal(toRunView({ ...pendingRow, context_data: 'not json' }, berlin).context_data, null);
  });
});
