import forge from 'node-forge';
import { beforeAll, describe, expect, it } from 'vitest';

import { certificateExpiries } from '../../shared/auth/certificate-expiry.js';
import { checkAccountFields } from '../../shared/auth/registry.js';
import type { FieldMap } from '../../shared/accounts.js';
import { OutpostError } from '../../shared/errors.js';
import {
  chainPem,
  createPfx,
  createPfxWithOpenssl,
  createPki,
  issueCertificate,
  opensslAvailable,
  type TestPki,
} from '../helpers/pki.js';

const PASSPHRASE = 'correct horse';
const DAY_MS = 86_400_000;

/** Saves an mtls account's fields and returns the error it is refused with. */
function refusal(secrets: FieldMap, settings: FieldMap = {}): OutpostError {
  try {
    checkAccountFields('mtls', settings, secrets, true);
  } catch (err) {
    if (err instanceof OutpostError) return err;
    throw err;
  }
  throw new Error('expected the account to be refused');
}

/** Whole seconds from now, as certificates carry them. */
function inDays(days: number): Date {
  return new Date(Math.floor((Date.now() + days * DAY_MS) / 1000) * 1000);
}

describe('checking mtls secrets when an account is saved', () => {
  let pki: TestPki;
  let encryptedPkcs8: string;
  let legacyPkcs1: string;

  beforeAll(() => {
    pki = createPki();
    encryptedPkcs8 = pki.client.key.export({
      type: 'pkcs8',
      format: 'pem',
      cipher: 'aes-256-cbc',
      passphrase: PASSPHRASE,
    }) as string;
    legacyPkcs1 = pki.client.key.export({
      type: 'pkcs1',
      format: 'pem',
      cipher: 'aes-128-cbc',
      passphrase: PASSPHRASE,
    }) as string;
  });

  const certPem = () => chainPem(pki.client, pki.intermediate);

  it('accepts a valid identity and keeps the secrets as given', () => {
    const secrets = { certPem: certPem(), keyPem: encryptedPkcs8, keyPassphrase: PASSPHRASE };
    expect(checkAccountFields('mtls', {}, secrets, true)).toEqual({
      settings: {},
      secrets,
      warnings: [],
    });
  });

  it('refuses a wrong passphrase, naming secrets.keyPassphrase and never the passphrase', () => {
    for (const keyPem of [encryptedPkcs8, legacyPkcs1]) {
      const err = refusal({ certPem: certPem(), keyPem, keyPassphrase: 'wrong horse' });
      expect(err.code).toBe('INVALID_SECRET');
      expect(err.details).toEqual({ field: 'secrets.keyPassphrase' });
      expect(err.message).toBe(
        'secrets.keyPassphrase does not decrypt secrets.keyPem (wrong passphrase?)',
      );
    }
  });

  it('refuses an encrypted key without a passphrase', () => {
    const err = refusal({ certPem: certPem(), keyPem: encryptedPkcs8 });
    expect(err.details).toEqual({ field: 'secrets.keyPassphrase' });
    expect(err.message).toBe('secrets.keyPem is encrypted; secrets.keyPassphrase is required');
  });

  it('refuses a wrong or missing PKCS#12 password', () => {
    const pfxBase64 = createPfx(pki.client, [pki.intermediate], 'pfx-pass', '3des');
    let err = refusal({ pfxBase64, keyPassphrase: 'nope' });
    expect(err.details).toEqual({ field: 'secrets.keyPassphrase' });
    expect(err.message).toBe(
      'secrets.keyPassphrase does not open secrets.pfxBase64 (wrong password?)',
    );
    err = refusal({ pfxBase64 });
    expect(err.details).toEqual({ field: 'secrets.keyPassphrase' });
    expect(err.message).toBe(
      'secrets.pfxBase64 is protected by a password; secrets.keyPassphrase is required',
    );
  });

  it.runIf(opensslAvailable())('opens an AES PKCS#12 file with a non-ASCII password', () => {
    const pfxBase64 = createPfxWithOpenssl(pki.client, [pki.intermediate], 'pässwörd €');
    const secrets = { pfxBase64, keyPassphrase: 'pässwörd €' };
    expect(checkAccountFields('mtls', {}, secrets, true).warnings).toEqual([]);
    expect(refusal({ pfxBase64, keyPassphrase: 'passwort €' }).details).toEqual({
      field: 'secrets.keyPassphrase',
    });
  });

  it('refuses a key that does not match its certificate', () => {
    const err = refusal({ certPem: certPem(), keyPem: pki.clientEc.keyPem });
    expect(err.code).toBe('INVALID_SECRET');
    expect(err.details).toEqual({ field: 'secrets.keyPem' });
    expect(err.message).toBe('secrets.keyPem does not match the certificate in secrets.certPem');
  });

  it('refuses an expired client certificate with its date', () => {
    const expired = pki.issue({ commonName: 'old', notBefore: inDays(-60), notAfter: inDays(-1) });
    const err = refusal({ certPem: chainPem(expired, pki.intermediate), keyPem: expired.keyPem });
    expect(err.details).toEqual({ field: 'secrets.certPem' });
    expect(err.message).toBe(
      `secrets.certPem: the client certificate expired on ${expired.notAfter.toISOString()}`,
    );
  });

  it('refuses an expired certificate inside a PKCS#12 file, naming secrets.pfxBase64', () => {
    const expired = pki.issue({ commonName: 'old', notBefore: inDays(-60), notAfter: inDays(-1) });
    const pfxBase64 = createPfx(expired, [], 'pw', 'aes256');
    const err = refusal({ pfxBase64, keyPassphrase: 'pw' });
    expect(err.details).toEqual({ field: 'secrets.pfxBase64' });
    expect(err.message).toBe(
      `secrets.pfxBase64: the client certificate expired on ${expired.notAfter.toISOString()}`,
    );
  });

  it('refuses malformed PEM and base64 with the field at fault', () => {
    const cases: Array<[FieldMap, string, string]> = [
      [
        { certPem: 'hello', keyPem: pki.client.keyPem },
        'secrets.certPem',
        'secrets.certPem must hold one or more PEM certificates',
      ],
      [
        {
          certPem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----',
          keyPem: pki.client.keyPem,
        },
        'secrets.certPem',
        'secrets.certPem: certificate 1 cannot be parsed',
      ],
      [
        { certPem: certPem(), keyPem: pki.client.certPem },
        'secrets.keyPem',
        'secrets.keyPem must be a PEM private key (PKCS#1, PKCS#8 or SEC1)',
      ],
      [
        {
          certPem: certPem(),
          keyPem: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----',
        },
        'secrets.keyPem',
        'secrets.keyPem cannot be parsed as a private key',
      ],
      [
        { pfxBase64: 'not base64!' },
        'secrets.pfxBase64',
        'secrets.pfxBase64 must be a base64-encoded PKCS#12 (.pfx/.p12) file',
      ],
      [
        { pfxBase64: Buffer.from('hello').toString('base64') },
        'secrets.pfxBase64',
        'secrets.pfxBase64 is not a PKCS#12 file',
      ],
    ];
    for (const [secrets, field, message] of cases) {
      const err = refusal(secrets);
      expect({ code: err.code, field: err.details.field, message: err.message }).toEqual({
        code: 'INVALID_SECRET',
        field,
        message,
      });
    }
  });

  it('asks for one complete way of giving the certificate', () => {
    const pfxBase64 = createPfx(pki.client, [], 'pw', 'aes256');
    expect(refusal({}).details.field).toBe('secrets.certPem');
    expect(refusal({ certPem: certPem() }).details.field).toBe('secrets.keyPem');
    const both = refusal({ certPem: certPem(), keyPem: pki.client.keyPem, pfxBase64 });
    expect(both.details.field).toBe('secrets.pfxBase64');
    expect(both.message).toBe(
      'give either secrets.certPem and secrets.keyPem, or secrets.pfxBase64, not both; ' +
        'set secrets.certPem to null to use secrets.pfxBase64',
    );
    expect(refusal({ pfxBase64, password: 'x' }).details.field).toBe('secrets.password');
  });

  it('warns when a certificate of the chain expires within 30 days', () => {
    const soon = pki.issue({ commonName: 'soon', usages: ['clientAuth'], notAfter: inDays(20) });
    const shortCa = issueCertificate({
      commonName: 'Short Intermediate CA',
      ca: true,
      issuer: pki.root,
      notAfter: inDays(10),
    });
    const leaf = issueCertificate({ commonName: 'leaf', issuer: shortCa, usages: ['clientAuth'] });
    const check = (secrets: FieldMap) => checkAccountFields('mtls', {}, secrets, true).warnings;
    expect(check({ certPem: chainPem(soon, pki.intermediate), keyPem: soon.keyPem })).toEqual([
      `secrets.certPem: the client certificate expires on ${soon.notAfter.toISOString()}`,
    ]);
    expect(check({ certPem: chainPem(leaf, shortCa), keyPem: leaf.keyPem })).toEqual([
      `secrets.certPem: the chain certificate "Short Intermediate CA" expires on ` +
        shortCa.notAfter.toISOString(),
    ]);
  });

  it('warns about a passphrase that is not used and a leaf not meant for clients', () => {
    const serverOnly = pki.issue({ commonName: 'server only', usages: ['serverAuth'] });
    const secrets = { certPem: serverOnly.certPem, keyPem: serverOnly.keyPem, keyPassphrase: 'x' };
    expect(checkAccountFields('mtls', {}, secrets, true).warnings).toEqual([
      'secrets.keyPassphrase: secrets.keyPem is not encrypted; the passphrase is not used',
      'secrets.certPem: the client certificate is not meant for client authentication ' +
        '(extendedKeyUsage lacks clientAuth); servers may refuse it',
    ]);
  });

  it('leaves sealed secrets to the terminal', () => {
    expect(checkAccountFields('mtls', {}, {}, false)).toEqual({
      settings: {},
      secrets: {},
      warnings: [],
    });
  });

  it('never puts the passphrase or key material in a message', () => {
    const secret = 'S3cret-Passphrase';
    const key = forge.pki.encryptRsaPrivateKey(
      forge.pki.privateKeyFromPem(
        pki.client.key.export({ type: 'pkcs1', format: 'pem' }) as string,
      ),
      PASSPHRASE,
      { legacy: true, algorithm: '3des' },
    );
    const keyBody = key.split('\n')[4]!;
    for (const secrets of [
      { certPem: certPem(), keyPem: key, keyPassphrase: secret },
      { pfxBase64: createPfx(pki.client, [], PASSPHRASE, '3des'), keyPassphrase: secret },
    ]) {
      const err = refusal(secrets);
      expect(err.message).not.toContain(secret);
      expect(err.message).not.toContain(keyBody);
      expect(JSON.stringify(err.toJSON())).not.toContain(secret);
    }
  });
});

describe('certificateExpiries', () => {
  it('lists the CA bundle and the client chain of an account, soonest first', () => {
    const root = issueCertificate({ commonName: 'Root', ca: true, notAfter: inDays(300) });
    const ca = issueCertificate({
      commonName: 'CA',
      ca: true,
      issuer: root,
      notAfter: inDays(100),
    });
    const leaf = issueCertificate({ commonName: 'Leaf', issuer: ca, notAfter: inDays(200) });
    const pfxBase64 = createPfx(leaf, [ca], 'pw', 'aes256');
    const settings = { caPem: root.certPem };
    const iso = (d: Date) => d.toISOString();
    expect(certificateExpiries('mtls', settings, { pfxBase64, keyPassphrase: 'pw' })).toEqual([
      { field: 'secrets.pfxBase64', subject: 'CA', notAfter: iso(ca.notAfter) },
      { field: 'secrets.pfxBase64', subject: 'Leaf', notAfter: iso(leaf.notAfter) },
      { field: 'settings.caPem', subject: 'Root', notAfter: iso(root.notAfter) },
    ]);
    // Sealed secrets: only what the settings show.
    expect(certificateExpiries('mtls', settings, {})).toEqual([
      { field: 'settings.caPem', subject: 'Root', notAfter: iso(root.notAfter) },
    ]);
    expect(certificateExpiries('bearer', {}, { token: 't' })).toEqual([]);
  });
});
