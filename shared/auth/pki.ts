/**
 * Reading certificates and private keys given as PEM for TLS auth types. Node's own OpenSSL reads
 * what it can; node-forge reads legacy encryptions that OpenSSL 3 refuses without its legacy
 * provider. Errors name the field at fault and never carry key material or a passphrase.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';

import forge from 'node-forge';

import { OutpostError } from '../errors.js';

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
// PKCS#8 (plain or encrypted), PKCS#1 (RSA) and SEC1 (EC); legacy encryption lives inside the
// RSA and EC blocks as Proc-Type and DEK-Info headers.
const KEY_BLOCK =
  /-----BEGIN (RSA |EC |ENCRYPTED )?PRIVATE KEY-----[\s\S]+?-----END \1?PRIVATE KEY-----/g;

/** The field names a client identity's errors point at. */
export const KEY_FIELD = 'secrets.keyPem';
/** See `KEY_FIELD`. */
export const PASSPHRASE_FIELD = 'secrets.keyPassphrase';

/**
 * Parses every certificate of a PEM bundle, in order; throws INVALID_SECRET naming `field` when
 * the value holds none or one cannot be parsed.
 */
export function parseCertificates(pem: unknown, field: string): X509Certificate[] {
  const blocks = typeof pem === 'string' ? (pem.match(CERT_BLOCK) ?? []) : [];
  if (blocks.length === 0) {
    throw new OutpostError('INVALID_SECRET', `${field} must hold one or more PEM certificates`, {
      field,
    });
  }
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new OutpostError(
        'INVALID_SECRET',
        `${field}: certificate ${i + 1} cannot be parsed`,
        { field },
        err,
      );
    }
  });
}

/** A private key read from PEM, and the PEM that Node's TLS should be given for it. */
export interface LoadedKey {
  key: KeyObject;
  /** The key block as given when Node reads it; else a re-encoding (see `tlsKeyPem`). */
  tlsPem: string;
  encrypted: boolean;
}

/**
 * Reads a PEM private key (PKCS#1, PKCS#8 or SEC1, plain or encrypted). A wrong or missing
 * passphrase points at `secrets.keyPassphrase`; anything else at `secrets.keyPem`.
 */
export function loadPrivateKey(pem: unknown, passphrase: string | undefined): LoadedKey {
  const blocks = typeof pem === 'string' ? (pem.match(KEY_BLOCK) ?? []) : [];
  const block = blocks[0];
  if (block === undefined) {
    throw new OutpostError(
      'INVALID_SECRET',
      `${KEY_FIELD} must be a PEM private key (PKCS#1, PKCS#8 or SEC1)`,
      { field: KEY_FIELD },
    );
  }
  if (blocks.length > 1) {
    throw new OutpostError('INVALID_SECRET', `${KEY_FIELD} must hold exactly one private key`, {
      field: KEY_FIELD,
    });
  }
  const encrypted =
    block.startsWith('-----BEGIN ENCRYPTED') || /Proc-Type:\s*4,ENCRYPTED/.test(block);
  if (encrypted && !passphrase) {
    throw new OutpostError(
      'INVALID_SECRET',
      `${KEY_FIELD} is encrypted; ${PASSPHRASE_FIELD} is required`,
      { field: PASSPHRASE_FIELD },
    );
  }
  if (!encrypted) {
    try {
      return { key: createPrivateKey({ key: block, format: 'pem' }), tlsPem: block, encrypted };
    } catch (err) {
      throw new OutpostError(
        'INVALID_SECRET',
        `${KEY_FIELD} cannot be parsed as a private key`,
        {
          field: KEY_FIELD,
        },
        err,
      );
    }
  }

  let nodeError: unknown;
  try {
    const key = createPrivateKey({ key: block, format: 'pem', passphrase });
    return { key, tlsPem: block, encrypted };
  } catch (err) {
    nodeError = err;
  }
  // OpenSSL 3 refuses legacy ciphers (DES, RC2, PKCS#12 PBE with RC2) without its legacy
  // provider, and reports a wrong passphrase and an unknown cipher alike; node-forge can tell.
  const key = decryptWithForge(block, passphrase!);
  if (key === undefined) {
    throw new OutpostError(
      'INVALID_SECRET',
      `${PASSPHRASE_FIELD} does not decrypt ${KEY_FIELD} (wrong passphrase?)`,
      { field: PASSPHRASE_FIELD },
      nodeError,
    );
  }
  return { key, tlsPem: tlsKeyPem(key, passphrase), encrypted };
}

/**
 * Decrypts an encrypted PEM key with node-forge: undefined when the passphrase is wrong; throws
 * INVALID_SECRET when the encryption is one forge cannot read either.
 */
function decryptWithForge(block: string, passphrase: string): KeyObject | undefined {
  let der: Buffer | null;
  let type: 'pkcs1' | 'pkcs8';
  try {
    if (block.startsWith('-----BEGIN ENCRYPTED')) {
      const info = forge.pki.decryptPrivateKeyInfo(
        forge.pki.encryptedPrivateKeyFromPem(block),
        passphrase,
      ) as forge.asn1.Asn1 | null;
      der = info ? Buffer.from(forge.asn1.toDer(info).getBytes(), 'binary') : null;
      type = 'pkcs8';
    } else if (block.startsWith('-----BEGIN RSA')) {
      const rsa = forge.pki.decryptRsaPrivateKey(
        block,
        passphrase,
      ) as forge.pki.rsa.PrivateKey | null;
      der = rsa
        ? Buffer.from(forge.asn1.toDer(forge.pki.privateKeyToAsn1(rsa)).getBytes(), 'binary')
        : null;
      type = 'pkcs1';
    } else {
      // A legacy-encrypted EC key: forge decrypts only RSA ones, and Node already failed.
      return undefined;
    }
  } catch (err) {
    // forge throws on ciphers and KDFs it does not know, and on garbage after a bad decrypt.
    if (/unsupported|not (a )?supported|unknown/i.test((err as Error).message)) {
      throw new OutpostError(
        'INVALID_SECRET',
        `${KEY_FIELD} is encrypted with a cipher Outpost cannot read; re-encrypt it with AES`,
        { field: KEY_FIELD },
        err,
      );
    }
    return undefined;
  }
  if (der === null) return undefined;
  try {
    return createPrivateKey({ key: der, format: 'der', type });
  } catch {
    // A wrong passphrase can still pass forge's padding check now and then; the result is junk.
    return undefined;
  }
}

/**
 * PEM for Node's TLS of a key that was decoded here (from a PKCS#12 file or a legacy cipher):
 * PKCS#8, encrypted again with the same passphrase when there is one, so that no decrypted copy
 * of the key is kept where there was none before.
 */
export function tlsKeyPem(key: KeyObject, passphrase: string | undefined): string {
  if (!passphrase) return key.export({ type: 'pkcs8', format: 'pem' }) as string;
  return key.export({
    type: 'pkcs8',
    format: 'pem',
    cipher: 'aes-256-cbc',
    passphrase,
  }) as string;
}

/** The common name of a certificate's subject, else the whole subject (for messages). */
export function subjectName(cert: X509Certificate): string {
  const cn = /^CN=(.*)$/m.exec(cert.subject);
  return cn?.[1] ?? cert.subject.replace(/\n/g, ', ');
}

/** A certificate's notAfter as an ISO 8601 string. */
export function notAfterIso(cert: X509Certificate): string {
  return new Date(cert.validTo).toISOString();
}

/** A certificate's notBefore as an ISO 8601 string. */
export function notBeforeIso(cert: X509Certificate): string {
  return new Date(cert.validFrom).toISOString();
}
