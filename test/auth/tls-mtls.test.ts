import { createPrivateKey } from 'node:crypto';
import { createSecureContext } from 'node:tls';

import forge from 'node-forge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { checkAccountFields } from '../../shared/auth/registry.js';
import { OutpostError } from '../../shared/errors.js';
import { createTestExecutor, testAccount } from '../helpers/executor-harness.js';
import {
  chainPem,
  createPfx,
  createPfxWithOpenssl,
  createPki,
  opensslAvailable,
  startTlsServer,
  type TestCert,
  type TestPki,
  type TlsTestServer,
} from '../helpers/pki.js';

const PASSPHRASE = 'correct horse';
const PFX_PASSWORD = 'pfx-pass';
const hasOpenssl = opensslAvailable();

async function failure(fn: () => Promise<unknown>): Promise<OutpostError> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof OutpostError) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

describe('the mtls auth type against a server that demands a client certificate', () => {
  let pki: TestPki;
  let server: TlsTestServer;
  const harness = createTestExecutor();

  beforeAll(async () => {
    pki = createPki();
    // The server trusts only the root: a client that does not send its intermediate fails.
    server = await startTlsServer({
      certPem: chainPem(pki.server, pki.intermediate),
      keyPem: pki.server.keyPem,
      clientCaPem: pki.root.certPem,
    });
  });

  afterAll(async () => {
    await harness.close();
    await server.close();
  });

  /** Saves the account the way the API does, runs one request, and returns the chain seen. */
  async function presentedChain(secrets: Record<string, unknown>): Promise<string[]> {
    const settings = { caPem: pki.root.certPem };
    expect(checkAccountFields('mtls', settings, secrets, true).warnings).toEqual([]);
    const answer = await harness.run(testAccount('mtls', server.url, settings, secrets), {
      path: '/who',
    });
    expect(answer.status).toBe(200);
    return (JSON.parse(answer.text) as { clientChain: string[] }).clientChain;
  }

  const fullChain = (leaf: TestCert) => [
    leaf.commonName,
    'Outpost Test Intermediate CA',
    'Outpost Test Root CA',
  ];

  const keyFormats: Array<[string, () => { keyPem: string; leaf: TestCert; pass?: string }]> = [
    ['PKCS#1 RSA', () => ({ leaf: pki.client, keyPem: rsaPkcs1() })],
    ['PKCS#8', () => ({ leaf: pki.client, keyPem: pki.client.keyPem })],
    [
      'SEC1 EC',
      () => ({
        leaf: pki.clientEc,
        keyPem: pki.clientEc.key.export({ type: 'sec1', format: 'pem' }) as string,
      }),
    ],
    [
      'encrypted PKCS#8',
      () => ({
        leaf: pki.client,
        pass: PASSPHRASE,
        keyPem: pki.client.key.export({
          type: 'pkcs8',
          format: 'pem',
          cipher: 'aes-256-cbc',
          passphrase: PASSPHRASE,
        }) as string,
      }),
    ],
    [
      'encrypted PKCS#1 (legacy Proc-Type PEM, AES-128)',
      () => ({ leaf: pki.client, pass: PASSPHRASE, keyPem: legacyPkcs1('aes128') }),
    ],
    [
      'encrypted PKCS#1 (legacy Proc-Type PEM, DES-CBC, which OpenSSL 3 refuses)',
      () => ({ leaf: pki.client, pass: PASSPHRASE, keyPem: legacyPkcs1('des') }),
    ],
  ];

  function rsaPkcs1(): string {
    return pki.client.key.export({ type: 'pkcs1', format: 'pem' }) as string;
  }

  function legacyPkcs1(algorithm: 'aes128' | 'des'): string {
    const pem = forge.pki.encryptRsaPrivateKey(
      forge.pki.privateKeyFromPem(rsaPkcs1()),
      PASSPHRASE,
      {
        legacy: true,
        // forge's types omit 'des', which it supports: a cipher OpenSSL 3 no longer reads.
        algorithm: algorithm as 'aes128',
      },
    );
    expect(pem).toContain('Proc-Type: 4,ENCRYPTED');
    if (algorithm === 'des') {
      // The point of this case: Node cannot read it, so Outpost must decrypt it with forge.
      expect(() => createPrivateKey({ key: pem, passphrase: PASSPHRASE })).toThrow();
    }
    return pem;
  }

  it.each(keyFormats)('sends the leaf and intermediate with a %s key', async (_name, make) => {
    const { leaf, keyPem, pass } = make();
    const secrets: Record<string, unknown> = { certPem: chainPem(leaf, pki.intermediate), keyPem };
    if (pass) secrets.keyPassphrase = pass;
    expect(await presentedChain(secrets)).toEqual(fullChain(leaf));
  });

  it('puts the leaf first when the chain is pasted in another order', async () => {
    const secrets = { certPem: chainPem(pki.intermediate, pki.client), keyPem: pki.client.keyPem };
    expect(await presentedChain(secrets)).toEqual(fullChain(pki.client));
  });

  const pfxKinds: Array<[string, boolean, () => string]> = [
    [
      'node-forge AES-256',
      true,
      () => createPfx(pki.client, [pki.intermediate], PFX_PASSWORD, 'aes256'),
    ],
    [
      'node-forge 3DES (legacy)',
      true,
      () => createPfx(pki.client, [pki.intermediate], PFX_PASSWORD, '3des'),
    ],
    [
      'openssl default (AES-256, SHA-256 MAC)',
      hasOpenssl,
      () => createPfxWithOpenssl(pki.client, [pki.intermediate], PFX_PASSWORD),
    ],
    [
      'openssl -legacy (RC2-40 and 3DES)',
      hasOpenssl,
      () => createPfxWithOpenssl(pki.client, [pki.intermediate], PFX_PASSWORD, { legacy: true }),
    ],
  ];

  for (const [name, available, make] of pfxKinds) {
    it.runIf(available)(`sends the chain from a PKCS#12 file made by ${name}`, async () => {
      const secrets = { pfxBase64: make(), keyPassphrase: PFX_PASSWORD };
      expect(await presentedChain(secrets)).toEqual(fullChain(pki.client));
    });
  }

  it.runIf(hasOpenssl)('reads a legacy PKCS#12 file that Node itself refuses', () => {
    const pfx = createPfxWithOpenssl(pki.client, [pki.intermediate], PFX_PASSWORD, {
      legacy: true,
    });
    // Why the file goes through node-forge: OpenSSL 3 needs its legacy provider for RC2.
    expect(() =>
      createSecureContext({ pfx: Buffer.from(pfx, 'base64'), passphrase: PFX_PASSWORD }),
    ).toThrow(expect.objectContaining({ code: 'ERR_CRYPTO_UNSUPPORTED_OPERATION' }));
    const account = testAccount(
      'mtls',
      server.url,
      {},
      { pfxBase64: pfx, keyPassphrase: PFX_PASSWORD },
    );
    const tls = harness.executor.tlsFor(account);
    expect(tls.cert).toBe(chainPem(pki.client, pki.intermediate).replace(/\r\n/g, '\n'));
    // The converted key is kept encrypted with the file's own password.
    expect(tls.key?.startsWith('-----BEGIN ENCRYPTED PRIVATE KEY-----')).toBe(true);
    expect(tls.passphrase).toBe(PFX_PASSWORD);
  });

  it('converts a PKCS#12 file once per account and secret values', () => {
    const pfxBase64 = createPfx(pki.client, [pki.intermediate], PFX_PASSWORD, 'aes256');
    const account = testAccount('mtls', server.url, {}, { pfxBase64, keyPassphrase: PFX_PASSWORD });
    const first = harness.executor.tlsFor(account);
    // The re-encrypted key has a random salt: the same string means the conversion was reused.
    expect(harness.executor.tlsFor(account).key).toBe(first.key);
    const changed = { ...account, secrets: { ...account.secrets, keyPassphrase: PFX_PASSWORD } };
    expect(harness.executor.tlsFor(changed).key).toBe(first.key);
    const other = createPfx(pki.client, [pki.intermediate], 'other-pass', 'aes256');
    const rotated = { ...account, secrets: { pfxBase64: other, keyPassphrase: 'other-pass' } };
    const next = harness.executor.tlsFor(rotated);
    expect(next.key).not.toBe(first.key);
    expect(next.passphrase).toBe('other-pass');
  });

  it('is refused when only the leaf is sent, as the server trusts only the root', async () => {
    const account = testAccount(
      'mtls',
      server.url,
      { caPem: pki.root.certPem },
      { certPem: pki.client.certPem, keyPem: pki.client.keyPem },
    );
    const before = server.seen.length;
    const err = await failure(() => harness.run(account, { path: '/leaf-only' }));
    // Node's server checks the chain after the TLS 1.3 handshake and closes the socket without
    // an alert: a connection closed right after the handshake, read as a refused certificate.
    expect({ code: err.code, message: err.message }).toEqual({
      code: 'TLS_FAILED',
      message:
        'the target closed the connection right after the TLS handshake without answering: ' +
        'it most likely refused the client certificate',
    });
    expect(server.seen.length).toBe(before);
  });

  it('is refused by the server when no client certificate is sent', async () => {
    const account = testAccount('ca-certificate', server.url, { caPem: pki.root.certPem });
    const before = server.seen.length;
    const err = await failure(() => harness.run(account, { path: '/anonymous' }));
    expect({ code: err.code, message: err.message }).toEqual({
      code: 'TLS_FAILED',
      message:
        'the target closed the connection right after the TLS handshake without answering: ' +
        'it may require a client certificate, and this account sends none',
    });
    expect(server.seen.length).toBe(before);
  });
});
