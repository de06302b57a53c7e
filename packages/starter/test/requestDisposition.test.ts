import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { requestDisposition } from '../src/consuming/requestDisposition.ts';

const grant = {
  decision: 'run',
  scriptUrl: 'http://seatable/files/t.py',
  apiToken: 'TOKEN',
  dtableWebUrl: 'http://seatable/',
  timeoutSeconds: 900,
} as const;

describe('requestDisposition', () => {
  test('acks a granted claim and runs it', () => {
    assert.deepEqual(requestDisposition(grant, 1), { action: 'ack', execute: true });
  });

  test('acks a dropped claim without running it', () => {
    assert.deepEqual(requestDisposition({ decision: 'drop', reason: 'claimed elsewhere' }, 3), {
      action: 'ack',
      execute: false,
    });
  });

  test("puts a deferred request back after the scheduler's delay", () => {
    assert.deepEqual(
      requestDisposition({ decision: 'defer', delayMs: 1234, reason: 'fair share' }, 1),
      { action: 'nak', delayMs: 1234 },
    );
  });

  test('puts an unanswered request back with a back-off that doubles per delivery up to 30 s', () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 20].map((deliveryCount) => {
      const disposition = requestDisposition(
        { decision: 'unanswered', reason: 'timeout' },
        deliveryCount,
      );
      assert.equal(disposition.action, 'nak');
      return disposition.action === 'nak' ? disposition.delayMs : -1;
    });
    assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  });
});
