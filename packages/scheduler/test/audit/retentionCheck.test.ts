import assert from 'node:assert/strict';
import { test } from 'node:test';
import { retentionWarnings } from '../../src/audit/retentionCheck.ts';

const retention = { logDays: 30, statisticsDays: 90 };

test('says nothing when the log keeps its events for ever', () => {
  assert.deepEqual(retentionWarnings({ maxAgeSeconds: 0, maxBytes: -1 }, retention), []);
});

test('says nothing when the log keeps events longer than the tables keep rows', () => {
  assert.deepEqual(retentionWarnings({ maxAgeSeconds: 120 * 86_400, maxBytes: -1 }, retention), []);
});

test('warns about runs and statistics a rebuild would lose when the log forgets sooner', () => {
  const warnings = retentionWarnings({ maxAgeSeconds: 7 * 86_400, maxBytes: -1 }, retention);
  assert.equal(warnings.length, 2);
  assert.match(
    warnings[0] ?? '',
    /keeps events 7 days .* run logs stay 30 days .* lose the runs older than 7 days/,
  );
  assert.match(warnings[1] ?? '', /statistics stay 90 days/);
});

test('warns only about statistics when the log outlives the run logs but not the statistics', () => {
  const warnings = retentionWarnings({ maxAgeSeconds: 60 * 86_400, maxBytes: -1 }, retention);
  assert.deepEqual(warnings.length, 1);
  assert.match(warnings[0] ?? '', /DELETE_STATISTICS_DAYS/);
});

test('warns that a size cap drops the oldest events whatever their age', () => {
  const warnings = retentionWarnings({ maxAgeSeconds: 0, maxBytes: 1_000_000 }, retention);
  assert.match(warnings[0] ?? '', /capped at 1000000 bytes/);
});
