/**
 * Reading PKCS#12 (PFX) files with node-forge. OpenSSL 3, and so Node, refuses files encrypted
 * the legacy way (RC2-40 certificates, as `openssl pkcs12 -export -legacy` and older tools
 * make) unless its legacy provider is loaded, which Node does not do by default; forge reads
 * those and modern (PBES2/AES) files alike, so every file goes one way.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';

import forge from 'node-forge';

import { OutpostError } from '../errors.js';
import { PASSPHRASE_FIELD } from './pki.js';

/** The field a PKCS#12 file's errors point at. */
export const PFX_FIELD = 'secrets.pfxBase64';

/** The certificates (in file order) and the one private key of a PKCS#12 file. */
export interface PfxContents {
  certs: X509Certificate[];
  key: KeyObject;
}

/**
 * Decodes a base64 PKCS#12 file with its password. A wrong or missing password points at
 * `secrets.keyPassphrase`; a malformed file, or one without exactly one key, at
 * `secrets.pfxBase64`.
 */
export function readPfx(pfxBase64: unknown, password: string | undefined): PfxContents {
  const der = decodeBase64(pfxBase64);
  let asn1: forge.asn1.Asn1;
  try {
    // Not strict: PKCS#12 files are BER, and some tools write indefinite lengths.
    asn1 = forge.asn1.fromDer(der.toString('binary'), false);
  } catch (err) {
    throw invalid(`${PFX_FIELD} is not a PKCS#12 file`, err);
  }
  const p12 = openPfx(asn1, password);

  const certBags = bagsOf(p12, forge.pki.oids.certBag);
  const keyBags = [
    ...bagsOf(p12, forge.pki.oids.pkcs8ShroudedKeyBag),
    ...bagsOf(p12, forge.pki.oids.keyBag),
  ];
  if (keyBags.length !== 1) {
    throw invalid(`${PFX_FIELD} must hold exactly one private key; it holds ${keyBags.length}`);
  }
  const certs = certBags.map((bag, i) => {
    try {
      // forge decodes RSA certificates and leaves others as ASN.1; both re-encode to the
      // original DER, since forge keeps the signed part as it was read.
      const asn = bag.cert ? forge.pki.certificateToAsn1(bag.cert) : bag.asn1;
      return new X509Certificate(Buffer.from(forge.asn1.toDer(asn).getBytes(), 'binary'));
    } catch (err) {
      throw invalid(`${PFX_FIELD}: certificate ${i + 1} cannot be parsed`, err);
    }
  });
  if (certs.length === 0) throw invalid(`${PFX_FIELD} holds no certificate`);
  return { certs, key: keyOf(keyBags[0]!) };
}

function decodeBase64(value: unknown): Buffer {
  const compact = typeof value === 'string' ? value.replace(/\s+/g, '') : '';
  if (compact === '' || compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) {
    throw invalid(`${PFX_FIELD} must be a base64-encoded PKCS#12 (.pfx/.p12) file`);
  }
  return Buffer.from(compact, 'base64');
}

function openPfx(asn1: forge.asn1.Asn1, password: string | undefined): forge.pkcs12.Pkcs12Pfx {
  // Without a password, tools disagree on whether "no password" is an empty string or none at
  // all in the key derivation; try both before asking for one.
  const candidates = password !== undefined && password !== '' ? [password] : ['', undefined];
  let lastError: unknown;
  for (const candidate of candidates) {
    try {
      return forge.pkcs12.pkcs12FromAsn1(asn1, false, candidate);
    } catch (err) {
      lastError = err;
      const retried = retryUtf8(asn1, candidate, err);
      if (retried) return retried;
      // forge says "password" or "decrypt" when the MAC or a decryption fails; anything else is
      // the file itself, and another password will not help.
      if (!/password|decrypt/i.test((err as Error).message)) {
        const unsupported = /unsupported|not (a )?supported|unknown/i.test((err as Error).message);
        throw invalid(
          unsupported
            ? `${PFX_FIELD} uses an algorithm Outpost cannot read`
            : `${PFX_FIELD} is not a valid PKCS#12 file`,
          err,
        );
      }
    }
  }
  const message =
    candidates.length === 1
      ? `${PASSPHRASE_FIELD} does not open ${PFX_FIELD} (wrong password?)`
      : `${PFX_FIELD} is protected by a password; ${PASSPHRASE_FIELD} is required`;
  throw new OutpostError('INVALID_SECRET', message, { field: PASSPHRASE_FIELD }, lastError);
}

/**
 * Works around digitalbazaar/forge#487: forge checks the MAC with the password as UTF-16, as
 * PKCS#12 says, but derives PBES2 (AES) keys from the low byte of each character where OpenSSL
 * uses UTF-8, so a non-ASCII password opens the MAC and then fails to decrypt. The MAC being
 * verified already, decrypt once more without it, giving forge the UTF-8 bytes.
 */
function retryUtf8(
  asn1: forge.asn1.Asn1,
  password: string | undefined,
  err: unknown,
): forge.pkcs12.Pkcs12Pfx | undefined {
  const message = (err as Error).message;
  if (
    !password ||
    Buffer.byteLength(password) === password.length ||
    /MAC/.test(message) ||
    !/decrypt/i.test(message)
  ) {
    return undefined;
  }
  const withoutMac = { ...asn1, value: (asn1.value as forge.asn1.Asn1[]).slice(0, 2) };
  try {
    return forge.pkcs12.pkcs12FromAsn1(withoutMac, false, forge.util.encodeUtf8(password));
  } catch {
    return undefined;
  }
}

function bagsOf(p12: forge.pkcs12.Pkcs12Pfx, bagType: string | undefined): forge.pkcs12.Bag[] {
  if (bagType === undefined) return [];
  return p12.getBags({ bagType })[bagType] ?? [];
}

function keyOf(bag: forge.pkcs12.Bag): KeyObject {
  try {
    // forge decodes RSA keys (into PKCS#1) and leaves EC and others as PKCS#8 ASN.1.
    if (bag.key) {
      const der = forge.asn1.toDer(forge.pki.privateKeyToAsn1(bag.key)).getBytes();
      return createPrivateKey({ key: Buffer.from(der, 'binary'), format: 'der', type: 'pkcs1' });
    }
    const der = forge.asn1.toDer(bag.asn1).getBytes();
    return createPrivateKey({ key: Buffer.from(der, 'binary'), format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw invalid(`${PFX_FIELD} holds a private key that cannot be read`, err);
  }
}

function invalid(message: string, cause?: unknown): OutpostError {
  return new OutpostError('INVALID_SECRET', message, { field: PFX_FIELD }, cause);
}
