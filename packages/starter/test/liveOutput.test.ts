import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type LiveOutputMessage, namingFor } from '@pipeline/events';
import { pino } from 'pino';
import { LiveOutput } from '../src/execution/liveOutput.ts';

function recordingConnection() {
  const sent: Array<{ subject: string; message: LiveOutputMessage }> = [];
  return {
    sent,
    connection: {
      publish(subject: string, payload?: string | Uint8Array) {
        const text = typeof payload === 'string' ? payload : new TextDecoder().decode(payload);
        sent.push({ subject, message: JSON.parse(text) as LiveOutputMessage });
      },
    },
  };
}

const log = pino({ level: 'silent' });

describe('live output from the starter', () => {
  test('pushes each new part of the output once, on the run subject, then the end', () => {
    const { sent, connection } = recordingConnection();
    const live = new LiveOutput({ connection, naming: namingFor('p'), intervalMs: 60_000 });
    let printed = 'first\n';
    const follower = live.follow(42, { text: () => printed }, log);
    printed += 'second\n';
    follower.stop();
    follower.stop();

    assert.deepEqual(sent, [
      {
        subject: 'p.live.42',
        message: { kind: 'output', runId: 42, offset: 0, text: 'first\nsecond\n' },
      },
      { subject: 'p.live.42', message: { kind: 'end', runId: 42, length: 13 } },
    ]);
  });

  test('splits a large output into pieces that fit a message, in order', () => {
    const { sent, connection } = recordingConnection();
    const live = new LiveOutput({ connection, naming: namingFor('p'), intervalMs: 60_000 });
    const printed = 'ü'.repeat(100_000);
    live.follow(1, { text: () => printed }, log).stop();

    const pieces = sent.filter((entry) => entry.message.kind === 'output');
    assert.ok(pieces.length > 1);
    let offset = 0;
    for (const { message } of pieces) {
      assert.equal(message.kind === 'output' && message.offset, offset);
      const text = message.kind === 'output' ? message.text : '';
      // The text itself, in JSON without its two quotes.
      assert.ok(Buffer.byteLength(JSON.stringify(text)) - 2 <= 64 * 1024);
      offset += text.length;
    }
    assert.equal(offset, printed.length);
  });

  test('a connection that refuses to publish does not fail the run', () => {
    const live = new LiveOutput({
      connection: {
        publish: () => {
          throw new Error('connection closed');
        },
      },
      naming: namingFor('p'),
    });
    assert.doesNotThrow(() => live.follow(1, { text: () => 'x' }, log).stop());
  });
});
