/**
 * `mtls`: a TLS client certificate, as `certPem` + `keyPem` (PKCS#1, PKCS#8 or SEC1, optionally
 * encrypted) or as `pfxBase64` (PKCS#12, legacy encryptions included); `keyPassphrase` opens
 * whichever is encrypted. The trusted CAs are the common `settings.caPem`, else the system's.
 */
import { createHmac, randomBytes } from 'node:crypto';

import type { FieldMap, ResolvedAccount } from '../accounts.js';
import { OutpostError } from '../errors.js';
import {
  CERT_FIELD,
  loadClientIdentity,
  validateClientIdentity,
  type ClientIdentity,
} from './client-identity.js';
import { PFX_FIELD } from './pfx.js';
import { KEY_FIELD } from './pki.js';
import type { AuthHandler, TlsMaterial } from './types.js';

/** How many accounts' converted identities are kept; more than any one process serves. */
const CACHE_LIMIT = 1000;
// The cache is keyed by an HMAC of the secrets under a key that exists only in this process, so
// that what sits in memory next to an entry cannot be used to test guesses of a passphrase.
const cacheKey = randomBytes(32);
const cache = new Map<string, { digest: string; identity: ClientIdentity }>();

/**
 * The client identity of an account, converted once per account and secret values: parsing a
 * PKCS#12 file with forge costs tens of milliseconds, too much for every request.
 */
export function clientIdentityFor(account: ResolvedAccount): ClientIdentity {
  const digest = secretsDigest(account.secrets);
  const hit = cache.get(account.id);
  if (hit?.digest === digest) return hit.identity;
  const identity = loadClientIdentity(account.secrets);
  // Replacing the entry drops the material of the account's previous secrets at once.
  cache.delete(account.id);
  cache.set(account.id, { digest, identity });
  if (cache.size > CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  return identity;
}

function secretsDigest(secrets: FieldMap): string {
  const fields = [secrets.certPem, secrets.keyPem, secrets.pfxBase64, secrets.keyPassphrase];
  return createHmac('sha256', cacheKey)
    .update(JSON.stringify(fields.map((v) => v ?? null)))
    .digest('hex');
}

/** Refuses a set of secrets that is neither `certPem` + `keyPem` nor `pfxBase64`. */
function checkSecretShape(secrets: FieldMap): void {
  const has = (name: string) => secrets[name] !== undefined && secrets[name] !== null;
  if (has('pfxBase64') && (has('certPem') || has('keyPem'))) {
    const other = has('certPem') ? CERT_FIELD : KEY_FIELD;
    throw new OutpostError(
      'INVALID_SECRET',
      `give either ${CERT_FIELD} and ${KEY_FIELD}, or ${PFX_FIELD}, not both; ` +
        `set ${other} to null to use ${PFX_FIELD}`,
      { field: PFX_FIELD },
    );
  }
  if (has('pfxBase64')) return;
  if (!has('certPem')) {
    throw new OutpostError(
      'INVALID_SECRET',
      `${CERT_FIELD} and ${KEY_FIELD}, or ${PFX_FIELD}, are required`,
      { field: CERT_FIELD },
    );
  }
  if (!has('keyPem')) {
    throw new OutpostError('INVALID_SECRET', `${KEY_FIELD} is required with ${CERT_FIELD}`, {
      field: KEY_FIELD,
    });
  }
}

/** The `mtls` auth type. */
export const mtlsAuth: AuthHandler = {
  secretFields: ['certPem', 'keyPem', 'pfxBase64', 'keyPassphrase'],
  check(settings, secrets, secretsKnown) {
    // Sealed secrets are checked by the terminal, which reports problems as warnings.
    if (!secretsKnown) return { settings, secrets, warnings: [] };
    checkSecretShape(secrets);
    const identity = loadClientIdentity(secrets);
    const warnings = validateClientIdentity(identity, Date.now());
    return { settings, secrets, warnings };
  },
  async apply() {
    // The credential is the TLS client certificate; nothing goes into the request itself.
  },
  tls(account): TlsMaterial {
    const { material } = clientIdentityFor(account);
    return { cert: material.cert, key: material.key, passphrase: material.passphrase };
  },
};
