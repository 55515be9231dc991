/**
 * Private keys of `oauth2-jwt`: parsed once with node:crypto (PKCS#8, PKCS#1 or SEC1 PEM) and
 * checked against the JWS algorithm, so that a key that cannot sign is refused when the account
 * is saved rather than when its first job runs.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';

import { OutpostError } from '../errors.js';

/** The JWS algorithms accepted, all asymmetric ones that `jose` signs with on Node. */
export const JWT_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;

/** One accepted JWS algorithm. */
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

const EC_CURVES: Partial<Record<JwtAlgorithm, string>> = {
  ES256: 'prime256v1',
  ES384: 'secp384r1',
  ES512: 'secp521r1',
};

const FIELD = 'secrets.privateKeyPem';

function refuse(message: string, cause?: unknown): never {
  throw new OutpostError('INVALID_SECRET', `${FIELD} ${message}`, { field: FIELD }, cause);
}

/** Parses the PEM private key and checks that it fits the algorithm; INVALID_SECRET if not. */
export function loadSigningKey(pem: unknown, algorithm: JwtAlgorithm): KeyObject {
  if (typeof pem !== 'string' || !pem.includes('PRIVATE KEY-----')) {
    refuse('must be a PEM private key');
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    // The parser's message may quote the input: it is not repeated.
    refuse('cannot be parsed as an unencrypted PEM private key', err);
  }
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (algorithm.startsWith('RS') || algorithm.startsWith('PS')) {
    const rsaOk = type === 'rsa' || (algorithm.startsWith('PS') && type === 'rsa-pss');
    if (!rsaOk) refuse(`is a ${type ?? 'unknown'} key; ${algorithm} needs an RSA key`);
    if ((details.modulusLength ?? 0) < 2048)
      refuse(`is an RSA key under 2048 bits; ${algorithm} needs 2048 or more`);
  } else if (algorithm.startsWith('ES')) {
    const curve = EC_CURVES[algorithm];
    if (type !== 'ec' || details.namedCurve !== curve) {
      refuse(`does not fit ${algorithm}: it needs an EC key on curve ${curve}`);
    }
  } else if (type !== 'ed25519') {
    refuse(`does not fit ${algorithm}: it needs an Ed25519 key`);
  }
  return key;
}
