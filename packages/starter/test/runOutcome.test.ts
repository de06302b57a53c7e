import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { outputTexts } from '@pipeline/events';
import { runOutcome } from '../src/execution/runOutcome.ts';

const exited = { oomKilled: false, timedOut: false, printed: 'hello\n' };

describe('runOutcome', () => {
  test('a zero exit status is a success with the output as printed', () => {
    assert.deepEqual(runOutcome({ ...exited, exitCode: 0 }), {
      success: true,
      returnCode: 0,
      output: 'hello\n',
      timedOut: false,
      outOfMemory: false,
    });
  });

  test('a non-zero exit status is a failure with that return code', () => {
    const outcome = runOutcome({ ...exited, exitCode: 3 });
    assert.equal(outcome.success, false);
    assert.equal(outcome.returnCode, 3);
    assert.equal(outcome.output, 'hello\n');
  });

  test('a timeout keeps the printed output, adds the timeout text and is never out of memory', () => {
    const outcome = runOutcome({
      exitCode: 137,
      oomKilled: true,
      timedOut: true,
      printed: 'started',
    });
    assert.equal(outcome.success, false);
    assert.equal(outcome.returnCode, -1);
    assert.equal(outcome.timedOut, true);
    assert.equal(outcome.outOfMemory, false);
    assert.equal(outcome.output, `started\n${outputTexts.timeout}`);
  });

  test('a timeout of a silent script is the timeout text alone', () => {
    const outcome = runOutcome({ exitCode: 137, oomKilled: false, timedOut: true, printed: '' });
    assert.equal(outcome.output, outputTexts.timeout);
  });

  test('SIGKILL together with the OOM flag is out of memory, with the OOM line last', () => {
    const outcome = runOutcome({
      exitCode: 137,
      oomKilled: true,
      timedOut: false,
      printed: 'allocating\n',
    });
    assert.equal(outcome.success, false);
    assert.equal(outcome.returnCode, 137);
    assert.equal(outcome.outOfMemory, true);
    assert.equal(outcome.output, `allocating\n${outputTexts.outOfMemory}`);
  });

  test('the OOM flag of a killed child does not fail a script that exited 0', () => {
    const outcome = runOutcome({
      exitCode: 0,
      oomKilled: true,
      timedOut: false,
      printed: 'child rc -9\n',
    });
    assert.equal(outcome.success, true);
    assert.equal(outcome.outOfMemory, false);
    assert.equal(outcome.output, 'child rc -9\n');
  });

  test('SIGKILL without the OOM flag is a plain failure with return code 137', () => {
    const outcome = runOutcome({ exitCode: 137, oomKilled: false, timedOut: false, printed: '' });
    assert.equal(outcome.returnCode, 137);
    assert.equal(outcome.outOfMemory, false);
    assert.equal(outcome.output, '');
  });
});
