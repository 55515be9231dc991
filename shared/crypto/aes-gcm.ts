/**
 * Secrets at rest: AES-256-GCM under a local key, with a random 96-bit nonce per value. The
 * stored form is `v1.<key id>.<nonce>.<ciphertext>.<tag>` (base64url parts), so that a key
 * rotation can tell which key sealed a value.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

import { OutpostError } from '../errors.js';

/** A 32-byte key and its short id (derived from the key, safe to store). */
export interface AtRestKey {
  id: string;
  key: Buffer;
}

/** Wraps raw key bytes; throws unless they are exactly 32 bytes. */
export function atRestKey(key: Buffer): AtRestKey {
  if (key.length !== 32) {
    throw new OutpostError(
      'INVALID_SETTING',
      `an encryption key must be 32 bytes, got ${key.length}`,
    );
  }
  const id = createHash('sha256').update(key).digest('base64url').slice(0, 8);
  return { id, key };
}

/** Encrypts a UTF-8 string. `context` (e.g. the row id) is bound as associated data. */
export function encryptAtRest(key: AtRestKey, plaintext: string, context: string): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key.key, nonce);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const tag = cipher.getAuthTag();
  return [
    'v1',
    key.id,
    nonce.toString('base64url'),
    ciphertext.toString('base64url'),
    tag.toString('base64url'),
  ].join('.');
}

/** The id of the key that sealed a stored value. */
export function keyIdOf(stored: string): string {
  return stored.split('.')[1] ?? '';
}

/** Decrypts a value sealed by `encryptAtRest` with one of the given keys. */
export function decryptAtRest(keys: AtRestKey[], stored: string, context: string): string {
  const [version, keyId, nonce, ciphertext, tag] = stored.split('.');
  const key = keys.find((k) => k.id === keyId);
  if (version !== 'v1' || !nonce || ciphertext === undefined || !tag) {
    throw new OutpostError('INTERNAL', 'a stored secret has an unknown format');
  }
  if (!key) {
    throw new OutpostError(
      'INTERNAL',
      `a stored secret was sealed with key ${keyId}, which is not configured`,
    );
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.key, Buffer.from(nonce, 'base64url'));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([
      decipher.update(Buffer.from(ciphertext, 'base64url')),
      decipher.final(),
    ]).toString('utf8');
  } catch (err) {
    throw new OutpostError(
      'INTERNAL',
      'a stored secret could not be decrypted (wrong key or tampered)',
      {},
      err,
    );
  }
}
