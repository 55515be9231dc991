/**
 * A TLS client identity (certificate chain and private key) from an account's secrets: either
 * `certPem` + `keyPem` or `pfxBase64`, with `keyPassphrase` for whichever is encrypted. Loading
 * checks that the key opens and matches a certificate; validation adds the date checks that only
 * make sense when an account is saved.
 */
import type { KeyObject, X509Certificate } from 'node:crypto';

import type { FieldMap } from '../accounts.js';
import { OutpostError } from '../errors.js';
import { optionalString } from './common-settings.js';
import { PFX_FIELD, readPfx } from './pfx.js';
import {
  KEY_FIELD,
  PASSPHRASE_FIELD,
  loadPrivateKey,
  notAfterIso,
  notBeforeIso,
  parseCertificates,
  subjectName,
  tlsKeyPem,
} from './pki.js';
import type { TlsMaterial } from './types.js';

/** The field of a PEM client certificate chain. */
export const CERT_FIELD = 'secrets.certPem';
/** Certificates that expire within this many days are reported (warnings, agent status). */
export const EXPIRY_WARNING_DAYS = 30;

const DAY_MS = 86_400_000;
const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';
const ANY_EKU_OID = '2.5.29.37.0';

/** A loaded client identity. */
export interface ClientIdentity {
  /** The leaf (the certificate of the key) first, then the other certificates as given. */
  chain: X509Certificate[];
  /** Where the certificates came from: `secrets.certPem` or `secrets.pfxBase64`. */
  certField: string;
  /** What Node's TLS gets: the chain as PEM, the key, and its passphrase when it has one. */
  material: Required<Pick<TlsMaterial, 'cert' | 'key'>> & Pick<TlsMaterial, 'passphrase'>;
  /** Things worth telling whoever saves the account (an unused passphrase). */
  notes: string[];
}

/** Loads the identity from secrets; throws INVALID_SECRET naming the field at fault. */
export function loadClientIdentity(secrets: FieldMap): ClientIdentity {
  const passphrase = optionalString(secrets, 'keyPassphrase', 'secrets');
  if (secrets.pfxBase64 !== undefined && secrets.pfxBase64 !== null) {
    const { certs, key } = readPfx(secrets.pfxBase64, passphrase);
    const chain = leafFirst(certs, key, PFX_FIELD, `the private key in ${PFX_FIELD}`);
    return {
      chain,
      certField: PFX_FIELD,
      material: {
        cert: chainPem(chain),
        key: tlsKeyPem(key, passphrase),
        passphrase: passphrase || undefined,
      },
      notes: [],
    };
  }

  const certs = parseCertificates(secrets.certPem, CERT_FIELD);
  const loaded = loadPrivateKey(secrets.keyPem, passphrase);
  const chain = leafFirst(certs, loaded.key, KEY_FIELD, KEY_FIELD);
  const notes: string[] = [];
  if (passphrase && !loaded.encrypted) {
    notes.push(`${PASSPHRASE_FIELD}: ${KEY_FIELD} is not encrypted; the passphrase is not used`);
  }
  return {
    chain,
    certField: CERT_FIELD,
    material: {
      cert: chainPem(chain),
      key: loaded.tlsPem,
      passphrase: loaded.encrypted ? passphrase : undefined,
    },
    notes,
  };
}

/**
 * Puts the certificate of `key` first. Servers take the first certificate as the leaf; users
 * paste bundles in any order.
 */
function leafFirst(
  certs: X509Certificate[],
  key: KeyObject,
  field: string,
  keyName: string,
): X509Certificate[] {
  const index = certs.findIndex((cert) => matches(cert, key));
  if (index < 0) {
    const where =
      field === PFX_FIELD ? `any certificate in ${PFX_FIELD}` : `the certificate in ${CERT_FIELD}`;
    throw new OutpostError('INVALID_SECRET', `${keyName} does not match ${where}`, { field });
  }
  return [certs[index]!, ...certs.filter((_, i) => i !== index)];
}

function matches(cert: X509Certificate, key: KeyObject): boolean {
  try {
    return cert.checkPrivateKey(key);
  } catch {
    // Node throws instead of answering false for some key type mismatches.
    return false;
  }
}

function chainPem(chain: X509Certificate[]): string {
  return chain.map((c) => c.toString().trim()).join('\n') + '\n';
}

/**
 * The date checks of a save: an expired certificate anywhere in the chain is refused; one that
 * expires within `EXPIRY_WARNING_DAYS`, a leaf not valid yet, or a leaf not meant for client
 * authentication gives a warning. Returns the warnings, the identity's notes included.
 */
export function validateClientIdentity(identity: ClientIdentity, now: number): string[] {
  const warnings = [...identity.notes];
  const field = identity.certField;
  identity.chain.forEach((cert, i) => {
    const what =
      i === 0 ? 'the client certificate' : `the chain certificate "${subjectName(cert)}"`;
    const notAfter = Date.parse(cert.validTo);
    if (notAfter <= now) {
      throw new OutpostError(
        'INVALID_SECRET',
        `${field}: ${what} expired on ${notAfterIso(cert)}`,
        { field },
      );
    }
    if (notAfter - now < EXPIRY_WARNING_DAYS * DAY_MS) {
      warnings.push(`${field}: ${what} expires on ${notAfterIso(cert)}`);
    }
  });

  const leaf = identity.chain[0]!;
  if (Date.parse(leaf.validFrom) > now) {
    warnings.push(`${field}: the client certificate is not valid before ${notBeforeIso(leaf)}`);
  }
  // X509Certificate.keyUsage lists the extended key usages (undefined when there are none).
  const usages = leaf.keyUsage as string[] | undefined;
  if (usages && !usages.includes(CLIENT_AUTH_OID) && !usages.includes(ANY_EKU_OID)) {
    warnings.push(
      `${field}: the client certificate is not meant for client authentication ` +
        '(extendedKeyUsage lacks clientAuth); servers may refuse it',
    );
  }
  return warnings;
}
