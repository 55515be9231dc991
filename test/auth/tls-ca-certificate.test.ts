import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { checkAccountFields } from '../../shared/auth/registry.js';
import { OutpostError } from '../../shared/errors.js';
import { createTestExecutor, testAccount } from '../helpers/executor-harness.js';
import {
  chainPem,
  createPki,
  startTlsServer,
  type TestPki,
  type TlsTestServer,
} from '../helpers/pki.js';

/** Runs `fn`, which must throw an OutpostError, and returns that error. */
async function failure(fn: () => Promise<unknown>): Promise<OutpostError> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof OutpostError) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

describe('the ca-certificate auth type', () => {
  let pki: TestPki;
  let other: TestPki;
  let server: TlsTestServer;
  let wrongName: TlsTestServer;
  const harness = createTestExecutor();

  beforeAll(async () => {
    pki = createPki();
    other = createPki('Other');
    server = await startTlsServer({
      certPem: chainPem(pki.server, pki.intermediate),
      keyPem: pki.server.keyPem,
    });
    const elsewhere = pki.issue({ commonName: 'elsewhere', altNames: ['other.example'] });
    wrongName = await startTlsServer({
      certPem: chainPem(elsewhere, pki.intermediate),
      keyPem: elsewhere.keyPem,
    });
  });

  afterAll(async () => {
    await harness.close();
    await server.close();
    await wrongName.close();
  });

  it('reaches a server whose certificate chains to the given root CA', async () => {
    const account = testAccount('ca-certificate', server.url, { caPem: pki.root.certPem });
    const answer = await harness.run(account, { path: '/ping' });
    expect(answer.status).toBe(200);
    expect(answer.text).toBe('{"clientChain":[]}');
    expect(server.seen.at(-1)).toEqual({ path: '/ping', clientChain: [] });
  });

  it('accepts a bundle of several CAs and trusts each of them', async () => {
    const bundle = chainPem(other.root, pki.root);
    const account = testAccount('ca-certificate', server.url, { caPem: bundle });
    expect((await harness.run(account, { path: '/bundle' })).status).toBe(200);
  });

  it('gives the dispatcher only the bundle as CA list, so system roots are not added', () => {
    const account = testAccount('ca-certificate', server.url, { caPem: pki.root.certPem });
    // Node's `ca` option replaces its built-in roots; the bundle must be all that is passed.
    expect(harness.executor.tlsFor(account)).toEqual({ ca: [pki.root.certPem.trim()] });
  });

  it('fails with TLS_FAILED when the server chains to a different CA', async () => {
    const account = testAccount('ca-certificate', server.url, { caPem: other.root.certPem });
    const err = await failure(() => harness.run(account, { path: '/x' }));
    expect(err.code).toBe('TLS_FAILED');
    expect(err.message).toBe('TLS with the target failed: unable to get local issuer certificate');
  });

  it('still checks the host name: a certificate for another name fails TLS', async () => {
    const account = testAccount('ca-certificate', wrongName.url, { caPem: pki.root.certPem });
    const err = await failure(() => harness.run(account, { path: '/x' }));
    expect(err.code).toBe('TLS_FAILED');
    expect((err.cause as { code?: string }).code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(wrongName.seen).toEqual([]);
  });

  it('requires settings.caPem and refuses secrets', () => {
    expect(() => checkAccountFields('ca-certificate', {}, {}, true)).toThrow(
      expect.objectContaining({
        code: 'INVALID_SETTING',
        message: 'settings.caPem is required for authType "ca-certificate"',
        details: { field: 'settings.caPem' },
      }),
    );
    expect(() => checkAccountFields('ca-certificate', { caPem: 'not a pem' }, {}, true)).toThrow(
      expect.objectContaining({ details: { field: 'settings.caPem' } }),
    );
    expect(() =>
      checkAccountFields('ca-certificate', { caPem: pki.root.certPem }, { token: 't' }, true),
    ).toThrow(
      expect.objectContaining({
        code: 'INVALID_SECRET',
        message: 'secrets.token is not a secret of authType "ca-certificate"; accepted: none',
      }),
    );
    expect(checkAccountFields('ca-certificate', { caPem: pki.root.certPem }, {}, true)).toEqual({
      settings: { caPem: pki.root.certPem },
      secrets: {},
      warnings: [],
    });
  });
});
