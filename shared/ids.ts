/** Identifiers and secret tokens. */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';

/** A new id like `job_0f3c...` (the prefix says what it names; 32 hex digits of a UUID). */
export function newId(prefix: 'ws' | 'key' | 'term' | 'acct' | 'job' | 'req'): string {
  return `${prefix}_${randomUUID().replaceAll('-', '')}`;
}

/** A new random secret token with a readable prefix, e.g. `opk_...` for API keys. */
export function newSecretToken(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

/** SHA-256 of a token, hex: tokens are stored hashed, never in the clear. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Compares two strings in constant time (for their length). */
export function constantTimeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  if (ab.length !== bb.length) {
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}
