/**
 * Sealed secrets: an account's secrets encrypted to its terminal's public encryption key as a
 * compact JWE (ECDH-ES+A256KW, A256GCM). Only the terminal holds the private half.
 */
import {
  CompactEncrypt,
  compactDecrypt,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
} from 'jose';

import type { FieldMap } from '../accounts.js';
import { OutpostError } from '../errors.js';

/** The key agreement and content encryption of sealed secrets. */
export const SEAL_ALG = 'ECDH-ES+A256KW';
/** Content encryption of sealed secrets. */
export const SEAL_ENC = 'A256GCM';

/** Creates the terminal's encryption key pair, as JWKs. */
export async function generateEncryptionKeyPair(): Promise<{ publicJwk: JWK; privateJwk: JWK }> {
  const { publicKey, privateKey } = await generateKeyPair(SEAL_ALG, {
    crv: 'P-256',
    extractable: true,
  });
  const publicJwk = { ...(await exportJWK(publicKey)), alg: SEAL_ALG, use: 'enc' };
  return { publicJwk, privateJwk: await exportJWK(privateKey) };
}

/**
 * What a sealed set of secrets is bound to, in its authenticated header. Whoever relays the JWE
 * (the control plane) cannot change the binding without the plaintext, so a terminal can refuse
 * secrets that were moved to another account or pointed at another host.
 */
export interface SealBinding {
  accountId?: string;
  /** Every origin the account's secrets are sent to (see `sealOrigins` in seal-binding.ts). */
  origin?: string;
}

const ACCOUNT_HEADER = 'outpost-account';
const ORIGIN_HEADER = 'outpost-origin';

/** Seals secrets to a terminal's public encryption JWK, bound to an account and its origin. */
export async function sealSecrets(
  publicJwk: JWK,
  secrets: FieldMap,
  binding: string | SealBinding = {},
): Promise<string> {
  const bind = typeof binding === 'string' ? { accountId: binding } : binding;
  const key = await importJWK(publicJwk, SEAL_ALG);
  const header: { alg: string; enc: string; [k: string]: string } = {
    alg: SEAL_ALG,
    enc: SEAL_ENC,
    cty: 'outpost-secrets+json',
  };
  if (publicJwk.kid) header.kid = publicJwk.kid;
  if (bind.accountId) header[ACCOUNT_HEADER] = bind.accountId;
  if (bind.origin) header[ORIGIN_HEADER] = bind.origin;
  return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(secrets)))
    .setProtectedHeader(header)
    .encrypt(key);
}

/**
 * Opens sealed secrets with the terminal's private JWK. With `expected`, a JWE bound to another
 * account or origin is refused; an unbound one (sealed by an operator without `--host`) is not.
 */
export async function openSealedSecrets(
  privateJwk: JWK,
  jwe: string,
  expected?: SealBinding,
): Promise<FieldMap> {
  let value: unknown;
  let header: Record<string, unknown>;
  try {
    const key = await importJWK(privateJwk, SEAL_ALG);
    const opened = await compactDecrypt(jwe, key, {
      keyManagementAlgorithms: [SEAL_ALG],
      contentEncryptionAlgorithms: [SEAL_ENC],
    });
    header = opened.protectedHeader;
    value = JSON.parse(new TextDecoder().decode(opened.plaintext));
    if (!value || typeof value !== 'object' || Array.isArray(value))
      throw new Error('not an object');
  } catch (err) {
    throw new OutpostError(
      'INVALID_SECRET',
      "sealedSecrets could not be opened with this terminal's key: seal them to its current encryption key",
      { field: 'sealedSecrets' },
      err,
    );
  }
  const mismatch = (name: string, want: string | undefined) =>
    want !== undefined && header[name] !== undefined && header[name] !== want;
  if (mismatch(ACCOUNT_HEADER, expected?.accountId) || mismatch(ORIGIN_HEADER, expected?.origin)) {
    throw new OutpostError(
      'INVALID_SECRET',
      'sealedSecrets were sealed for another account or another host: send the secrets again ' +
        'for this one',
      { field: 'sealedSecrets' },
    );
  }
  return value as FieldMap;
}

/** Checks that a string looks like a compact JWE sealed for us (five parts, our algorithms). */
export function assertSealedShape(jwe: unknown): string {
  const fail = (why: string) =>
    new OutpostError('VALIDATION_FAILED', `sealedSecrets ${why}`, { field: 'sealedSecrets' });
  if (typeof jwe !== 'string') throw fail('must be a compact JWE string');
  const parts = jwe.split('.');
  if (parts.length !== 5) throw fail('must be a compact JWE (five dot-separated parts)');
  let header: { alg?: unknown; enc?: unknown };
  try {
    header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as typeof header;
  } catch (err) {
    throw new OutpostError(
      'VALIDATION_FAILED',
      'sealedSecrets has an unreadable header',
      { field: 'sealedSecrets' },
      err,
    );
  }
  if (header.alg !== SEAL_ALG || header.enc !== SEAL_ENC) {
    throw fail(
      `must use alg ${SEAL_ALG} and enc ${SEAL_ENC} (seal to the terminal's encryptionKey)`,
    );
  }
  return jwe;
}
