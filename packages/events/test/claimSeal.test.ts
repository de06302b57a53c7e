import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import { isUsableReplyKey, newClaimKeys, openSealed, sealFor } from '../src/claimSeal.ts';

describe('sealed claim replies', () => {
  const grant = Buffer.from('{"decision":"run","apiToken":"token-😀"}');

  test('open to the key pair they were sealed to, and only to it', () => {
    const keys = newClaimKeys();
    const sealed = sealFor(keys.publicKey, grant);
    assert.ok(!sealed.includes('token'));
    assert.deepEqual(openSealed(sealed, keys.privateKey), grant);
    assert.throws(() => openSealed(sealed, newClaimKeys().privateKey));
  });

  test('are different each time, and fail to open when altered', () => {
    const keys = newClaimKeys();
    const first = sealFor(keys.publicKey, grant);
    assert.notEqual(first, sealFor(keys.publicKey, grant));
    const parts = first.split('.');
    const body = Buffer.from(parts[3] ?? '', 'base64');
    body[0] = (body[0] ?? 0) ^ 1;
    parts[3] = body.toString('base64');
    assert.throws(() => openSealed(parts.join('.'), keys.privateKey));
    assert.throws(() => openSealed('a.b.c', keys.privateKey), /four parts/);
  });

  test('take only X25519 public keys', () => {
    assert.equal(isUsableReplyKey(newClaimKeys().publicKey), true);
    assert.equal(isUsableReplyKey('bm90IGEga2V5'), false);
    const ed25519 = generateKeyPairSync('ed25519').publicKey.export({
      type: 'spki',
      format: 'der',
    });
    assert.equal(isUsableReplyKey(ed25519.toString('base64')), false);
    assert.throws(() => sealFor(ed25519.toString('base64'), grant), /X25519/);
  });
});
