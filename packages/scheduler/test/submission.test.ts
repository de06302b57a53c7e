import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { dispatchBackoffMs } from '../src/claims/claimResponder.ts';
import { isAuthorized } from '../src/http/auth.ts';
import { parseSubmission } from '../src/submission/parseSubmission.ts';
import { monthRange, quotaOwnerKey } from '../src/submission/runAdmission.ts';

const valid = {
  dtable_uuid: '6A1F3C2E9B7D4E218F0A0C5D2B7E9A11',
  script_name: 'Report März 😀.py',
  owner: 'user-a@example.invalid',
};

describe('parseSubmission', () => {
  test('fills the defaults of the original and canonicalises the base uuid', () => {
    assert.deepEqual(parseSubmission(valid), {
      ok: true,
      submission: {
        dtableUuid: '6a1f3c2e-9b7d-4e21-8f0a-0c5d2b7e9a11',
        scriptName: 'Report März 😀.py',
        owner: 'user-a@example.invalid',
        orgId: -1,
        contextData: null,
        scriptsRunningLimit: -1,
        operateFrom: 'manualy',
        operator: null,
      },
    });
  });

  test('passes an object context on and drops any other context', () => {
    const context = { table: 'T', row: { _id: 'r1' } };
    const withObject = parseSubmission({ ...valid, context_data: context });
    assert.ok(withObject.ok);
    assert.deepEqual(withObject.submission.contextData, context);
    for (const other of [['a'], 'text', 3, true, null]) {
      const dropped = parseSubmission({ ...valid, context_data: other });
      assert.ok(dropped.ok);
      assert.equal(dropped.submission.contextData, null);
    }
  });

  test('refuses a context nested deeper than 64 levels, which no encoder could carry', () => {
    const nested = (depth: number): unknown => (depth === 0 ? 1 : { a: nested(depth - 1) });
    const [deepest, tooDeep] = [nested(63), nested(5000)];

    assert.equal(parseSubmission({ ...valid, context_data: { row: deepest } }).ok, true);
    assert.deepEqual(parseSubmission({ ...valid, context_data: tooDeep }), {
      ok: false,
      message: 'Parameters invalid',
    });
  });

  test('keeps the fields SeaTable sends as they are', () => {
    const check = parseSubmission({
      ...valid,
      org_id: 42,
      scripts_running_limit: 0,
      operate_from: 'automation-rule',
      operator: 'admin@example.invalid',
      temp_api_token: 'never-kept',
    });
    assert.ok(check.ok);
    assert.equal(check.submission.orgId, 42);
    assert.equal(check.submission.scriptsRunningLimit, 0);
    assert.equal(check.submission.operateFrom, 'automation-rule');
    assert.equal(check.submission.operator, 'admin@example.invalid');
    assert.ok(!JSON.stringify(check.submission).includes('never-kept'));
  });

  test('answers Bad request for a body that is not an object', () => {
    for (const body of [null, [], 'x', 1]) {
      assert.deepEqual(parseSubmission(body), { ok: false, message: 'Bad request' });
    }
  });

  test('answers Parameters invalid for each wrong field', () => {
    const wrong = [
      { dtable_uuid: undefined },
      { dtable_uuid: 'not-a-uuid' },
      { script_name: '' },
      { script_name: 'a/b.py' },
      { script_name: 'a\u0000b.py' },
      { script_name: 'x'.repeat(256) },
      { script_name: '😀'.repeat(128) },
      { owner: '   ' },
      { owner: 12 },
      { org_id: '1' },
      { org_id: 2 ** 31 },
      { org_id: -2 },
      { scripts_running_limit: '5' },
      { scripts_running_limit: 1.5 },
      { scripts_running_limit: -2 },
      { operate_from: 'x'.repeat(51) },
      { operator: 7 },
    ];
    for (const overrides of wrong) {
      assert.deepEqual(
        parseSubmission({ ...valid, ...overrides }),
        { ok: false, message: 'Parameters invalid' },
        JSON.stringify(overrides).slice(0, 60),
      );
    }
  });

  test('accepts a 255-character name and names with plus, percent and backslash', () => {
    for (const name of ['x'.repeat(255), 'a+b c.py', '100%.py', 'a\\b.py', '😀'.repeat(127)]) {
      assert.equal(parseSubmission({ ...valid, script_name: name }).ok, true, name.slice(0, 10));
    }
  });
});

describe('monthRange', () => {
  test('gives the calendar month of the instant in the zone, as a half-open range', () => {
    assert.deepEqual(monthRange(new Date('2026-03-31T22:30:00Z'), 'Europe/Berlin'), {
      first: '2026-04-01',
      next: '2026-05-01',
    });
    assert.deepEqual(monthRange(new Date('2026-03-31T21:30:00Z'), 'Europe/Berlin'), {
      first: '2026-03-01',
      next: '2026-04-01',
    });
    assert.deepEqual(monthRange(new Date('2026-12-31T23:30:00Z'), 'Europe/Berlin'), {
      first: '2027-01-01',
      next: '2027-02-01',
    });
  });
});

describe('quotaOwnerKey', () => {
  test('limits by org when there is one and by user otherwise', () => {
    assert.equal(quotaOwnerKey({ owner: 'u@example.invalid', orgId: 7 }), 'org:7');
    assert.equal(
      quotaOwnerKey({ owner: 'u@example.invalid', orgId: -1 }),
      'user:u@example.invalid',
    );
  });
});

describe('isAuthorized', () => {
  test('accepts Token and Bearer with the exact secret only', () => {
    assert.equal(isAuthorized('Token s3cret', 's3cret'), true);
    assert.equal(isAuthorized('Bearer s3cret', 's3cret'), true);
    // The keyword in any case, as SeaTable's own API reads it.
    assert.equal(isAuthorized('token s3cret', 's3cret'), true);
    assert.equal(isAuthorized('BEARER s3cret', 's3cret'), true);
    for (const header of [
      undefined,
      '',
      's3cret',
      'Token s3cre',
      'Token s3cret ',
      'Tokens3cret',
      'Basic s3cret',
    ]) {
      assert.equal(isAuthorized(header, 's3cret'), false, String(header));
    }
  });

  test('accepts nothing when no secret is configured', () => {
    assert.equal(isAuthorized('Token ', ''), false);
  });
});

describe('dispatchBackoffMs', () => {
  test('doubles from one second and stops at thirty', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 9].map(dispatchBackoffMs),
      [1000, 2000, 4000, 8000, 16000, 30000, 30000],
    );
  });
});
