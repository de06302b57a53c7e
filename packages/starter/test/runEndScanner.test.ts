import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runEndLine } from '@pipeline/runner';
import { OutputCollector } from '../src/sandbox/outputCollector.ts';

const marker = '0123456789abcdef0123456789abcdef';

/** One stdout frame of Docker's multiplexed stream around `payload`. */
function frame(payload: Buffer, stream = 1): Buffer {
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

/** Feeds `bytes` to a collector in pieces of `size` bytes, each from a reused buffer. */
function collect(bytes: Buffer, size: number, limit = 1000) {
  const collector = new OutputCollector(limit, { endMarker: marker });
  let code: number | null = null;
  void collector.scriptEnded.then((value) => {
    code = value;
  });
  const reused = Buffer.alloc(size);
  for (let offset = 0; offset < bytes.length; offset += size) {
    const piece = bytes.subarray(offset, offset + size);
    piece.copy(reused);
    collector.push(reused, piece.length);
  }
  collector.end();
  return { collector, code: () => code };
}

describe('the end line in the output', () => {
  test('cuts the output at the end line, wherever reads and frames split it', async () => {
    const stream = Buffer.concat([
      frame(Buffer.from('hello\nwor')),
      frame(Buffer.concat([Buffer.from('ld'), runEndLine(marker, 3), Buffer.from('late')])),
      frame(Buffer.from('after the end')),
    ]);
    for (const size of [1, 2, 3, 7, 13, 64, stream.length]) {
      const { collector, code } = collect(stream, size);
      await Promise.resolve();
      assert.equal(collector.text(), 'hello\nworld', `reads of ${size} bytes`);
      assert.equal(code(), 3, `status read with reads of ${size} bytes`);
      assert.equal(collector.truncated, false);
    }
  });

  test('keeps a NUL and a look-alike with another marker as output', async () => {
    const other = runEndLine('ffffffffffffffffffffffffffffffff', 0);
    const text = Buffer.concat([Buffer.from('a\0b'), other, Buffer.from('\0pipeline-e')]);
    const { collector, code } = collect(frame(text), 5);
    await Promise.resolve();
    assert.equal(collector.text(), text.toString('utf8'));
    assert.equal(code(), null, 'no end was reported');
  });

  test('is found after the output limit was reached, and does not count as dropped output', async () => {
    const stream = frame(Buffer.concat([Buffer.from('x'.repeat(10)), runEndLine(marker, 0)]));
    const { collector, code } = collect(stream, 4, 10);
    await Promise.resolve();
    assert.equal(collector.text(), 'x'.repeat(10));
    assert.equal(collector.truncated, false);
    assert.equal(code(), 0);
  });
});
