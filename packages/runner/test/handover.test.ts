import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeHandover } from '../src/index.ts';

function split(bytes: Buffer): { header: Record<string, unknown>; rest: Buffer } {
  const newline = bytes.indexOf(0x0a);
  return {
    header: JSON.parse(bytes.subarray(0, newline).toString('utf8')),
    rest: bytes.subarray(newline + 1),
  };
}

describe('encodeHandover', () => {
  test('counts bytes, not characters, for a non-ASCII script and context', () => {
    const script = 'print("Zoë 😀")';
    const context = '{"Name":"Zoë 😀"}';
    const { header, rest } = split(encodeHandover({ env: { is_cloud: '1' }, script, context }));

    assert.deepEqual(header, {
      v: 1,
      env: { is_cloud: '1' },
      scriptBytes: Buffer.byteLength(script),
      contextBytes: Buffer.byteLength(context),
    });
    assert.equal(rest.toString('utf8'), script + context);
  });

  test('sends zero context bytes when there is no context', () => {
    for (const context of [undefined, null]) {
      const { header, rest } = split(
        encodeHandover({ env: {}, script: Buffer.from([0x70]), context }),
      );
      assert.equal(header.contextBytes, 0);
      assert.deepEqual([...rest], [0x70]);
    }
  });
});
