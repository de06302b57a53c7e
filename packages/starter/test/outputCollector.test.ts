import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  codePointCount,
  codePointOffset,
  OutputCollector,
} from '../src/sandbox/outputCollector.ts';

const encoder = new TextEncoder();

/** One Docker attach frame: 8-byte header (stream, 0, 0, 0, big-endian length) and payload. */
function frame(stream: 1 | 2, payload: Uint8Array | string): Uint8Array {
  const bytes = typeof payload === 'string' ? encoder.encode(payload) : payload;
  const framed = new Uint8Array(8 + bytes.length);
  framed[0] = stream;
  new DataView(framed.buffer).setUint32(4, bytes.length, false);
  framed.set(bytes, 8);
  return framed;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  const joined = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}

/** Feeds `bytes` in pieces of `size` bytes, as a socket might deliver them. */
function collect(bytes: Uint8Array, size: number, limit = 1_000_000): OutputCollector {
  const collector = new OutputCollector(limit);
  for (let offset = 0; offset < bytes.length; offset += size) {
    collector.push(bytes.subarray(offset, offset + size));
  }
  collector.end();
  return collector;
}

describe('OutputCollector', () => {
  test('removes the frame headers and keeps the first bytes of the output', () => {
    const collector = collect(frame(1, 'QWERTYU'), 64);
    assert.equal(collector.text(), 'QWERTYU');
    assert.equal(collector.truncated, false);
  });

  test('reassembles frames whose headers and payloads are split across chunks', () => {
    const stream = concat(frame(1, 'hello '), frame(1, 'world'), frame(2, '!\n'));
    for (const size of [1, 2, 3, 5, 7, 8, 9, 13]) {
      assert.equal(collect(stream, size).text(), 'hello world!\n', `chunks of ${size} bytes`);
    }
  });

  test('keeps characters whole when a chunk boundary cuts through them', () => {
    const text = 'ä€😀'.repeat(5000);
    const bytes = encoder.encode(text);
    const frames: Uint8Array[] = [];
    for (let offset = 0; offset < bytes.length; offset += 4093) {
      frames.push(frame(1, bytes.subarray(offset, offset + 4093)));
    }
    const output = collect(concat(...frames), 1021).text();
    assert.equal(output, text);
    assert.equal(output.includes('\uFFFD'), false);
  });

  test('replaces bytes that are not UTF-8 with U+FFFD and drops nothing else', () => {
    const stream = concat(
      frame(1, 'before\n'),
      frame(
        1,
        new Uint8Array([...encoder.encode('bad:'), 0xff, 0xfe, 0xc3, ...encoder.encode('(|end\n')]),
      ),
      frame(2, new Uint8Array([...encoder.encode('err:'), 0xe9, 0x74, 0xe9, 0x0a])),
    );
    assert.equal(
      collect(stream, 3).text(),
      'before\nbad:\uFFFD\uFFFD\uFFFD(|end\nerr:\uFFFDt\uFFFD\n',
    );
  });

  test('turns a sequence cut off by the end of the output into U+FFFD', () => {
    const euro = encoder.encode('€');
    assert.equal(
      collect(frame(1, concat(encoder.encode('x'), euro.subarray(0, 2))), 2).text(),
      'x\uFFFD',
    );
  });

  test('interleaves stdout and stderr in arrival order without mixing their partial characters', () => {
    const euro = encoder.encode('€');
    const stream = concat(
      frame(1, concat(encoder.encode('out1 '), euro.subarray(0, 1))),
      frame(2, 'err1 '),
      frame(1, concat(euro.subarray(1), encoder.encode(' out2 '))),
      frame(2, 'err2'),
    );
    assert.equal(collect(stream, 4).text(), 'out1 err1 € out2 err2');
  });

  test('caps the output at the limit counted in code points, not UTF-16 units or bytes', () => {
    const collector = collect(frame(1, '😀'.repeat(10)), 5, 4);
    assert.equal(collector.text(), '😀'.repeat(4));
    assert.equal(collector.keptCharacters, 4);
    assert.equal(collector.truncated, true);
  });

  test('keeps an output of exactly the limit whole and not marked truncated', () => {
    const collector = collect(frame(1, 'é'.repeat(600)), 100, 600);
    assert.equal(collector.text(), 'é'.repeat(600));
    assert.equal(collector.truncated, false);
  });

  test('drops everything after the limit, on both streams, and marks the output truncated', () => {
    const stream = concat(frame(1, 'Z'.repeat(30)), frame(2, 'late error'), frame(1, 'more'));
    const collector = collect(stream, 7, 10);
    assert.equal(collector.text(), 'Z'.repeat(10));
    assert.equal(collector.truncated, true);
  });

  test('counts every output byte it did not keep, frame headers aside', () => {
    // 30 + 10 + 4 payload bytes, 10 kept: the read that crosses the limit counts too.
    const stream = concat(frame(1, 'Z'.repeat(30)), frame(2, 'late error'), frame(1, 'more'));
    for (const size of [1, 7, 64, stream.length]) {
      assert.equal(collect(stream, size, 10).droppedBytes, 34, `reads of ${size} bytes`);
    }
  });

  test('counts dropped bytes of multi-byte characters, one cut by the limit read', () => {
    // 'é' is 2 bytes, '😀' 4: the 5 kept characters are 12 of the 4 × 2 + 6 × 4 = 32.
    const collector = collect(frame(1, `${'é'.repeat(4)}${'😀'.repeat(6)}`), 3, 5);
    assert.equal(collector.text(), `${'é'.repeat(4)}😀`);
    assert.equal(collector.droppedBytes, 32 - 12);
  });

  test('drops nothing from an output within the limit', () => {
    assert.equal(collect(frame(1, 'é'.repeat(600)), 100, 600).droppedBytes, 0);
  });

  test('gives an empty string for a script that printed nothing', () => {
    const collector = new OutputCollector(100);
    collector.end();
    assert.equal(collector.text(), '');
    assert.equal(collector.truncated, false);
  });

  test('accepts empty frames', () => {
    assert.equal(collect(concat(frame(1, ''), frame(2, 'x'), frame(1, '')), 3).text(), 'x');
  });
});

describe('code point helpers', () => {
  test('count astral characters once, as Python does', () => {
    assert.equal(codePointCount('a😀é'), 3);
    assert.equal(codePointCount(''), 0);
  });

  test('find the UTF-16 offset after a number of code points', () => {
    assert.equal(codePointOffset('😀😀x', 1), 2);
    assert.equal(codePointOffset('😀😀x', 3), 5);
    assert.equal(codePointOffset('ab', 5), 2);
  });
});
