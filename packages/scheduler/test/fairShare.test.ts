import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decideShare, type FairShareRules } from '../src/claims/fairShare.ts';

const rules: FairShareRules = {
  windowSeconds: 300,
  rateLimitShare: 0.25,
  deferMsPerQueuedRun: 20,
  minDeferMs: 1000,
  maxDeferMs: 15_000,
};
const idle = {
  totalSlots: 4,
  usedSeconds: 0,
  runningNow: 0,
  otherOwnersWaiting: 0,
  ownerQueued: 0,
};

describe('fair share decision', () => {
  test('allows an owner with no use in the window', () => {
    assert.deepEqual(decideShare(idle, rules), { decision: 'allow' });
  });

  test('allows up to the share of window × slots and refuses beyond it', () => {
    // 300 s × 4 slots × 0.25 = 300 s of run time.
    assert.equal(decideShare({ ...idle, usedSeconds: 300 }, rules).decision, 'allow');
    assert.equal(decideShare({ ...idle, usedSeconds: 300.5 }, rules).decision, 'reject');
  });

  test('scales the share with the fleet: twice the slots, twice the time', () => {
    assert.equal(
      decideShare({ ...idle, totalSlots: 8, usedSeconds: 500 }, rules).decision,
      'allow',
    );
  });

  test('lets an owner take every slot while nobody else waits', () => {
    assert.equal(decideShare({ ...idle, runningNow: 4 }, rules).decision, 'allow');
  });

  test('defers an owner holding its equal part of the slots while another owner waits', () => {
    // Two owners compete for four slots: two each.
    assert.equal(
      decideShare({ ...idle, runningNow: 1, otherOwnersWaiting: 1 }, rules).decision,
      'allow',
    );
    assert.deepEqual(decideShare({ ...idle, runningNow: 2, otherOwnersWaiting: 1 }, rules), {
      decision: 'defer',
      delayMs: 1000,
    });
  });

  test('keeps at least one slot for each owner when more owners wait than there are slots', () => {
    const crowded = { ...idle, totalSlots: 2, otherOwnersWaiting: 5 };
    assert.equal(decideShare({ ...crowded, runningNow: 0 }, rules).decision, 'allow');
    assert.equal(decideShare({ ...crowded, runningNow: 1 }, rules).decision, 'defer');
  });

  test('refuses over the share even when nobody else waits', () => {
    assert.equal(
      decideShare({ ...idle, usedSeconds: 1000, otherOwnersWaiting: 0 }, rules).decision,
      'reject',
    );
  });

  test('defers longer the more runs the owner has queued, within bounds', () => {
    const holding = { ...idle, runningNow: 4, otherOwnersWaiting: 1 };
    const delay = (ownerQueued: number) => {
      const decision = decideShare({ ...holding, ownerQueued }, rules);
      return decision.decision === 'defer' ? decision.delayMs : -1;
    };
    assert.equal(delay(1), 1000);
    assert.equal(delay(300), 6000);
    assert.equal(delay(5000), 15_000);
  });
});
