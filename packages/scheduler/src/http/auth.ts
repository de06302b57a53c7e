import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * True when `Authorization` is `Token <secret>` or `Bearer <secret>` (keyword in any case). Both sides are hashed
 * first so the comparison takes the same time whatever the length or content of the guess.
 */
export function isAuthorized(header: string | undefined, secret: string): boolean {
  if (typeof header !== 'string' || secret === '') return false;
  // The keyword in any letter case, as Django REST framework reads it on SeaTable's side.
  const match = /^(?:token|bearer) +(.+)$/i.exec(header);
  if (!match) return false;
  return timingSafeEqual(digest(match[1] ?? ''), digest(secret));
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
