import {
  createCipheriv,
  createDecipheriv,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';

/**
 * Sealed claim replies. Every starter shares one NATS user, which may subscribe to the
 * reply inboxes (`_INBOX.>`), so a reply granting a run would show its temporary API token
 * and script URL to every other starter. A starter therefore sends a public key with each
 * claim (X25519, a new pair per process), and the scheduler seals the grant to it: an
 * ephemeral X25519 key, HKDF-SHA256 over the shared secret, AES-256-GCM. Only the asking
 * process can open it; anyone else sees four base64 fields.
 */
export interface ClaimKeys {
  /** SPKI DER of the public key, base64: what goes into the claim request. */
  publicKey: string;
  privateKey: KeyObject;
}

const keyInfo = Buffer.from('seatable-pipeline claim reply v1');

export function newClaimKeys(): ClaimKeys {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  return { publicKey: spkiOf(publicKey).toString('base64'), privateKey };
}

/** Whether a claim's reply key can be sealed to: checked before the claim is decided. */
export function isUsableReplyKey(publicKey: string): boolean {
  try {
    return recipientKey(publicKey) !== null;
  } catch {
    return false;
  }
}

/** Seals `plain` to the holder of `recipientPublicKey`; throws on a key that is not X25519. */
export function sealFor(recipientPublicKey: string, plain: Uint8Array): string {
  const recipient = recipientKey(recipientPublicKey);
  const ephemeral = generateKeyPairSync('x25519');
  const ephemeralKey = spkiOf(ephemeral.publicKey);
  const secret = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipient });
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealKey(secret, ephemeralKey), iv);
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return [ephemeralKey, iv, cipher.getAuthTag(), body]
    .map((part) => part.toString('base64'))
    .join('.');
}

/** Opens what `sealFor` sealed to this key pair; throws when it was not, or was altered. */
export function openSealed(sealed: string, privateKey: KeyObject): Buffer {
  const parts = sealed.split('.');
  if (parts.length !== 4) throw new Error('a sealed reply has four parts');
  const [ephemeralKey, iv, tag, body] = parts.map((part) => Buffer.from(part, 'base64')) as [
    Buffer,
    Buffer,
    Buffer,
    Buffer,
  ];
  const sender = createPublicKey({ key: ephemeralKey, format: 'der', type: 'spki' });
  const secret = diffieHellman({ privateKey, publicKey: sender });
  const decipher = createDecipheriv('aes-256-gcm', sealKey(secret, ephemeralKey), iv);
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(body), decipher.final()]);
}

function recipientKey(publicKey: string): KeyObject {
  const key = createPublicKey({
    key: Buffer.from(publicKey, 'base64'),
    format: 'der',
    type: 'spki',
  });
  if (key.asymmetricKeyType !== 'x25519') throw new Error('the reply key is not X25519');
  return key;
}

function sealKey(secret: Buffer, ephemeralKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, ephemeralKey, keyInfo, 32));
}

function spkiOf(key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' });
}
