import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { outputPieces } from '@pipeline/events';
import { handoverBytes } from '../src/execution/handover.ts';
import { scriptDownloadUrl } from '../src/execution/scriptDownload.ts';

/** Splits the hand-over back into its header, script and context. */
function readHandover(bytes: Uint8Array) {
  const buffer = Buffer.from(bytes);
  const newline = buffer.indexOf(0x0a);
  const header = JSON.parse(buffer.subarray(0, newline).toString('utf8'));
  const script = buffer.subarray(newline + 1, newline + 1 + header.scriptBytes).toString('utf8');
  const context = buffer.subarray(newline + 1 + header.scriptBytes).toString('utf8');
  return { header, script, context };
}

const grant = {
  dtableWebUrl: 'https://cloud.example/',
  apiToken: 'TOKEN',
  script: Buffer.from('print(1)'),
};

describe('handoverBytes', () => {
  test('puts the server URL, token, is_cloud and TZ in the header and the context after the script', () => {
    const { header, script, context } = readHandover(
      handoverBytes({ ...grant, timeZone: 'Europe/Berlin', contextData: { row: 'Zoë 😀' } }),
    );
    assert.deepEqual(header.env, {
      dtable_web_url: 'https://cloud.example/',
      api_token: 'TOKEN',
      is_cloud: '1',
      TZ: 'Europe/Berlin',
    });
    assert.equal(script, 'print(1)');
    assert.deepEqual(JSON.parse(context), { row: 'Zoë 😀' });
    assert.equal(header.contextBytes, Buffer.byteLength(context));
  });

  test('leaves TZ out when no time zone is configured', () => {
    const { header } = readHandover(handoverBytes({ ...grant, timeZone: null, contextData: null }));
    assert.equal('TZ' in header.env, false);
  });

  test('passes no context for null, an array or an empty object, as the original', () => {
    for (const contextData of [null, ['a'], {}, 'text']) {
      const { header, context } = readHandover(
        handoverBytes({ ...grant, timeZone: null, contextData }),
      );
      assert.equal(header.contextBytes, 0, JSON.stringify(contextData));
      assert.equal(context, '');
    }
  });
});

describe('outputPieces', () => {
  test('keeps a short output in one piece and the empty output as one empty piece', () => {
    assert.deepEqual(outputPieces('hello'), ['hello']);
    assert.deepEqual(outputPieces(''), ['']);
  });

  test('cuts long output into pieces that fit the byte budget once JSON-encoded', () => {
    const output = `${'é'.repeat(700)}${'😀'.repeat(300)}"\\\n${'\u0001'.repeat(50)}`;
    const pieces = outputPieces(output, 256);
    assert.equal(pieces.join(''), output);
    for (const piece of pieces) {
      const encoded = Buffer.byteLength(JSON.stringify(piece)) - 2;
      assert.ok(encoded <= 256, `a piece takes ${encoded} bytes`);
      assert.equal(piece.includes('\uFFFD'), false);
      assert.doesNotMatch(piece, /^[\uDC00-\uDFFF]|[\uD800-\uDBFF]$/);
    }
  });

  test('fills pieces up to the budget', () => {
    const pieces = outputPieces('Z'.repeat(1000), 256);
    assert.deepEqual(
      pieces.map((piece) => piece.length),
      [256, 256, 256, 232],
    );
  });
});

describe('scriptDownloadUrl', () => {
  test('replaces scheme and host with the alternative root and keeps the path', () => {
    assert.equal(
      scriptDownloadUrl('https://cloud.seatable.io/seafhttp/files/abc/t.py', 'http://seatable:80/'),
      'http://seatable:80/seafhttp/files/abc/t.py',
    );
  });

  test('keeps the URL when no alternative root is configured', () => {
    assert.equal(scriptDownloadUrl('https://cloud/x.py', null), 'https://cloud/x.py');
  });
});
