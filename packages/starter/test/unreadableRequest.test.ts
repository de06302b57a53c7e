import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  maxUnreadableDeliveries,
  unreadableGiveUpAfterMs,
  unreadableRequestDisposition,
} from '../src/consuming/requestDisposition.ts';

describe('unreadableRequestDisposition', () => {
  test('puts an unreadable request back with a growing delay until its last delivery', () => {
    const dispositions = Array.from({ length: maxUnreadableDeliveries }, (_, index) =>
      unreadableRequestDisposition(index + 1, unreadableGiveUpAfterMs),
    );
    assert.deepEqual(dispositions, [
      { action: 'nak', delayMs: 1_000 },
      { action: 'nak', delayMs: 2_000 },
      { action: 'nak', delayMs: 4_000 },
      { action: 'nak', delayMs: 8_000 },
      { action: 'finish' },
    ]);
  });

  test('ends the run on any delivery past the last one', () => {
    assert.deepEqual(
      unreadableRequestDisposition(maxUnreadableDeliveries + 3, unreadableGiveUpAfterMs),
      {
        action: 'finish',
      },
    );
  });

  test('takes a shorter first delay and still doubles it', () => {
    assert.deepEqual(unreadableRequestDisposition(3, 0, { firstDelayMs: 20 }), {
      action: 'nak',
      delayMs: 80,
    });
  });

  test('keeps putting back a request younger than the give-up age, however often delivered', () => {
    // An upgraded starter's fair-share deferrals count as deliveries too.
    const young = unreadableRequestDisposition(maxUnreadableDeliveries + 10, 60_000);
    assert.equal(young.action, 'nak');
  });
});
