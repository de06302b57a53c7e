import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * True when `Authorization` is `Token <secret>` or `Bearer <secret>`. Both sides are hashed
 * first so the comparison takes the same time whatever the length or content of the guess.
 */
export function isAuthorized(header: string | undefined, secret: string): boolean {
  if (typeof header !== 'string' || secret === '') return false;
  const match = /^(?:Token|Bearer) (.+)$/.exec(header);
  if (!match) return false;
  return timingSafeEqual(digest(match[1] ?? ''), digest(secret));
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
