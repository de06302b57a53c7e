import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { namingFor } from '@pipeline/events';
import { pino } from 'pino';
import {
  LiveOutputHub,
  type LiveOutputHubOptions,
  type LivePiece,
} from '../../src/http/live/liveOutputHub.ts';

function hub(overrides: Partial<LiveOutputHubOptions> = {}) {
  let clock = 0;
  const live = new LiveOutputHub({
    connection: { subscribe: () => assert.fail('no subscription in these tests') },
    naming: namingFor('t'),
    limit: 10,
    maxAgeMs: 60_000,
    logger: pino({ level: 'silent' }),
    now: () => clock,
    ...overrides,
  });
  return { live, advance: (ms: number) => (clock += ms) };
}

function recorder() {
  const pieces: LivePiece[] = [];
  let ended = 0;
  return {
    pieces,
    ended: () => ended,
    listener: { output: (piece: LivePiece) => pieces.push(piece), ended: () => ended++ },
  };
}

describe('live output hub', () => {
  test('keeps what a run printed so far and hands new pieces to its watchers', () => {
    const { live } = hub();
    live.accept({ kind: 'output', runId: 7, offset: 0, text: 'abc' });
    const watcher = recorder();
    assert.deepEqual(live.printedSoFar(7), [{ offset: 0, text: 'abc' }]);
    live.watch(7, watcher.listener);
    live.accept({ kind: 'output', runId: 7, offset: 3, text: 'de' });
    live.accept({ kind: 'output', runId: 8, offset: 0, text: 'other run' });

    assert.deepEqual(watcher.pieces, [{ offset: 3, text: 'de' }]);
    assert.deepEqual(live.printedSoFar(7), [{ offset: 0, text: 'abcde' }]);
  });

  test('keeps at most the output limit in characters, however much a starter sends', () => {
    const { live } = hub({ limit: 10 });
    const watcher = recorder();
    live.watch(1, watcher.listener);
    live.accept({ kind: 'output', runId: 1, offset: 0, text: '12345678' });
    live.accept({ kind: 'output', runId: 1, offset: 8, text: '😀😀😀😀' });
    live.accept({ kind: 'output', runId: 1, offset: 16, text: 'more and more' });

    const kept = live
      .printedSoFar(1)
      .map((piece) => piece.text)
      .join('');
    assert.equal(kept, '12345678😀😀');
    assert.equal([...kept].length, 10);
    assert.deepEqual(
      watcher.pieces.map((piece) => piece.text),
      ['12345678', '😀😀'],
    );
  });

  test('cuts a piece of plain text at the limit', () => {
    const { live } = hub({ limit: 5 });
    live.accept({ kind: 'output', runId: 1, offset: 0, text: 'abcdefgh' });
    assert.deepEqual(live.printedSoFar(1), [{ offset: 0, text: 'abcde' }]);
  });

  test('skips what it already has and shows a lost piece as a gap', () => {
    const { live } = hub({ limit: 100 });
    live.accept({ kind: 'output', runId: 2, offset: 0, text: 'abcd' });
    live.accept({ kind: 'output', runId: 2, offset: 2, text: 'cdef' });
    live.accept({ kind: 'output', runId: 2, offset: 10, text: 'xyz' });

    assert.deepEqual(live.printedSoFar(2), [
      { offset: 0, text: 'abcdef' },
      { offset: 10, text: 'xyz' },
    ]);
  });

  test('forgets a run when its starter says it ended, and tells its watchers', () => {
    const { live } = hub();
    const watcher = recorder();
    live.watch(3, watcher.listener);
    live.accept({ kind: 'output', runId: 3, offset: 0, text: 'hi' });
    live.accept({ kind: 'end', runId: 3, length: 2 });

    assert.equal(watcher.ended(), 1);
    assert.equal(live.keptRuns, 0);
    assert.deepEqual(live.printedSoFar(3), []);
  });

  test('forgets a run its starter never ended once it is older than a run can live', () => {
    const { live, advance } = hub({ maxAgeMs: 60_000 });
    live.accept({ kind: 'output', runId: 4, offset: 0, text: 'a' });
    advance(30_000);
    live.accept({ kind: 'output', runId: 5, offset: 0, text: 'b' });
    advance(30_000);
    live.sweep();

    assert.equal(live.keptRuns, 1);
    assert.deepEqual(live.printedSoFar(4), []);
    assert.deepEqual(live.printedSoFar(5), [{ offset: 0, text: 'b' }]);
  });

  test('keeps at most maxRuns runs, dropping the oldest', () => {
    const { live } = hub({ maxRuns: 2 });
    for (const runId of [1, 2, 3]) live.accept({ kind: 'output', runId, offset: 0, text: 'x' });

    assert.equal(live.keptRuns, 2);
    assert.deepEqual(live.printedSoFar(1), []);
  });

  test('a watcher that leaves is no longer called', () => {
    const { live } = hub();
    const watcher = recorder();
    const unwatch = live.watch(6, watcher.listener);
    unwatch();
    live.accept({ kind: 'output', runId: 6, offset: 0, text: 'x' });
    assert.deepEqual(watcher.pieces, []);
  });
});
