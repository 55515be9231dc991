/**
 * The expiry dates of an account's certificates, for status reports ("accounts with
 * certificates that expire within 30 days"): the CA bundle of any auth type, and the client
 * chain of `mtls` when its secrets can be read.
 */
import { X509Certificate } from 'node:crypto';

import type { AuthType, FieldMap } from '../accounts.js';
import { loadClientIdentity } from './client-identity.js';
import { parseCaBundle } from './common-settings.js';
import { notAfterIso, subjectName } from './pki.js';

/** When one certificate of an account stops being valid. */
export interface CertificateExpiry {
  /** `settings.caPem`, `secrets.certPem` or `secrets.pfxBase64`. */
  field: string;
  /** The certificate's common name (or whole subject), to tell a chain's members apart. */
  subject: string;
  /** ISO 8601. */
  notAfter: string;
}

/**
 * The expiry dates of an account's certificates, soonest first. Never throws: what cannot be
 * parsed is left out, since saving the account already refused or warned about it. Pass `{}` as
 * secrets when they are sealed.
 */
export function certificateExpiries(
  authType: AuthType,
  settings: FieldMap,
  secrets: FieldMap,
): CertificateExpiry[] {
  const out: CertificateExpiry[] = [];
  if (settings.caPem !== undefined && settings.caPem !== null) {
    try {
      for (const pem of parseCaBundle(settings.caPem)) {
        const cert = new X509Certificate(pem);
        out.push({
          field: 'settings.caPem',
          subject: subjectName(cert),
          notAfter: notAfterIso(cert),
        });
      }
    } catch {
      // Refused when saved; nothing to report.
    }
  }
  if (authType === 'mtls' && Object.keys(secrets).length > 0) {
    try {
      const identity = loadClientIdentity(secrets);
      for (const cert of identity.chain) {
        out.push({
          field: identity.certField,
          subject: subjectName(cert),
          notAfter: notAfterIso(cert),
        });
      }
    } catch {
      // Same: a broken identity is reported by the account's check, not here.
    }
  }
  return out.sort((a, b) => a.notAfter.localeCompare(b.notAfter));
}
