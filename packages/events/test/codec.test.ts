import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeLogEvent, encodeJson } from '../src/codec.ts';

// An adopted run written by a scheduler before `RunImported` version 2 (no output chunks).
const importedV1 = {
  type: 'RunImported',
  schemaVersion: 1,
  occurredAt: '2026-06-01T00:00:00.000Z',
  runId: 17,
  data: {
    dtableUuid: '6a1f3c2e-9b7d-4e21-8f0a-0c5d2b7e9a11',
    owner: 'original@example.invalid',
    orgId: 3,
    scriptName: 'legacy.py',
    contextData: null,
    operateFrom: 'manualy',
    state: 'finished',
    success: true,
    returnCode: 0,
    output: 'from the original\n',
    createdAt: '2025-01-01T10:00:00.000Z',
    startedAt: '2025-01-01T10:00:01.000Z',
    finishedAt: '2025-01-01T10:00:02.000Z',
  },
};

describe('decoding older events', () => {
  test('a RunImported of version 1 reads as version 2 with its whole output in itself', () => {
    const decoded = decodeLogEvent(encodeJson(importedV1));

    assert.ok(decoded.ok, decoded.ok ? '' : decoded.reason);
    assert.equal(decoded.value.type, 'RunImported');
    assert.equal(decoded.value.schemaVersion, 2);
    if (decoded.value.type !== 'RunImported') return;
    assert.equal(decoded.value.data.outputChunks, 0);
    assert.equal(decoded.value.data.output, 'from the original\n');
  });

  test('a version this code does not know is refused with a reason, not guessed at', () => {
    const decoded = decodeLogEvent(encodeJson({ ...importedV1, schemaVersion: 3 }));

    assert.equal(decoded.ok, false);
  });
});
