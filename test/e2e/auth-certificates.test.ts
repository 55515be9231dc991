/**
 * Certificates and secret checks end to end through the HTTP API: mtls with a PKCS#12 file
 * through a terminal, a client certificate that expires within 30 days showing as a warning
 * (on the account, once the terminal has reported it, and in `terminal-agent status --json`),
 * and malformed secrets refused at save with the field named.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

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
import {
  agentCommand,
  cleanup,
  controlPlaneCommand,
  createAndEnroll,
  startAgent,
  startControlPlane,
  waitFor,
  type AgentProc,
  type ControlPlaneProc,
} from '../helpers/processes.js';

const DAY_MS = 86_400_000;
const PFX_PASSWORD = 'pfx-pass';
const PASSPHRASE = 'correct horse';
const hasOpenssl = opensslAvailable();

/** Whole seconds from now, as certificates carry them. */
function inDays(days: number): Date {
  return new Date(Math.floor((Date.now() + days * DAY_MS) / 1000) * 1000);
}

describe('certificates and secret checks through the API', () => {
  let cp: ControlPlaneProc;
  let agent: AgentProc;
  let terminalId: string;
  let pki: TestPki;
  let server: TlsTestServer;
  let expiringSoon: TestCert;

  beforeAll(async () => {
    pki = createPki();
    expiringSoon = pki.issue({
      commonName: 'Expiring Client',
      usages: ['clientAuth'],
      notAfter: inDays(20),
    });
    server = await startTlsServer({
      certPem: chainPem(pki.server, pki.intermediate),
      keyPem: pki.server.keyPem,
      clientCaPem: pki.root.certPem,
    });
    cp = await startControlPlane();
    const enrolled = await createAndEnroll(cp, 'cert-site');
    terminalId = enrolled.terminalId;
    agent = await startAgent(cp, terminalId, enrolled.dataDir);
  });

  afterAll(async () => {
    await agent?.stop();
    await cp?.stop();
    await server?.close();
    if (agent && cp) cleanup(agent.dataDir, cp.dataDir);
  });

  const chainSeen = (leaf: TestCert) =>
    JSON.stringify({
      clientChain: [leaf.commonName, 'Outpost Test Intermediate CA', 'Outpost Test Root CA'],
    });

  async function runWho(accountId: string) {
    const res = await cp.api.call('POST', '/v1/jobs?wait=true', {
      accountId,
      request: { method: 'GET', path: '/who' },
    });
    expect(res.status).toBe(200);
    return {
      state: res.body.state,
      error: res.body.error,
      status: res.body.response?.status,
      body: res.body.response?.body,
    };
  }

  const pfxKinds: Array<[string, boolean, () => string]> = [
    [
      'node-forge AES-256',
      true,
      () => createPfx(pki.client, [pki.intermediate], PFX_PASSWORD, 'aes256'),
    ],
    [
      'openssl -legacy (RC2-40, which Node cannot read)',
      hasOpenssl,
      () => createPfxWithOpenssl(pki.client, [pki.intermediate], PFX_PASSWORD, { legacy: true }),
    ],
  ];

  describe.each(pfxKinds)('mtls with a PKCS#12 file made by %s', (_name, available, make) => {
    it.runIf(available).each(['terminal', 'direct'] as const)(
      'presents the whole chain when run %s',
      async (where) => {
        const created = await cp.api.call('POST', '/v1/accounts', {
          name: `pfx ${where}`,
          authType: 'mtls',
          host: server.url,
          ...(where === 'terminal' ? { terminalId } : {}),
          settings: { caPem: pki.root.certPem },
          secrets: { pfxBase64: make(), keyPassphrase: PFX_PASSWORD },
        });
        expect(created.status).toBe(201);
        expect(created.body.secretFields).toEqual(['keyPassphrase', 'pfxBase64']);

        expect(await runWho(created.body.id)).toEqual({
          state: 'succeeded',
          error: null,
          status: 200,
          body: chainSeen(pki.client),
        });
      },
    );
  });

  describe('a client certificate that expires within 30 days', () => {
    const expected = () => [
      `secrets.certPem: the client certificate expires on ${expiringSoon.notAfter.toISOString()}`,
    ];
    const secrets = () => ({
      certPem: chainPem(expiringSoon, pki.intermediate),
      keyPem: expiringSoon.keyPem,
    });

    /** The account's warnings once the terminal has reported the secret fields it opened. */
    async function warningsOnceReported(accountId: string): Promise<unknown> {
      return waitFor('the terminal to report the account', async () => {
        const a = await cp.api.call('GET', `/v1/accounts/${accountId}`);
        return a.body.secretFields.length > 0 ? a.body.warnings : undefined;
      });
    }

    /** The account in `terminal-agent status --json`, once the agent has stored it. */
    async function agentStatusOf(accountId: string): Promise<unknown> {
      return waitFor('the agent to hold the account', () => {
        const status = agentCommand(['status', '--json', '--data-dir', agent.dataDir]);
        expect(status.code).toBe(0);
        const report = JSON.parse(status.stdout) as { accounts: Array<{ id: string }> };
        return report.accounts.find((a) => a.id === accountId);
      });
    }

    it('warns on a direct account as soon as it is saved', async () => {
      const created = await cp.api.call('POST', '/v1/accounts', {
        name: 'expiring direct',
        authType: 'mtls',
        host: server.url,
        settings: { caPem: pki.root.certPem },
        secrets: secrets(),
      });
      expect(created.status).toBe(201);
      expect(created.body.warnings).toEqual(expected());
      const read = await cp.api.call('GET', `/v1/accounts/${created.body.id}`);
      expect(read.body.warnings).toEqual(expected());
      expect(await runWho(created.body.id)).toMatchObject({ state: 'succeeded', status: 200 });
    });

    it('warns on an account bound to the terminal, and in terminal-agent status --json', async () => {
      const created = await cp.api.call('POST', '/v1/accounts', {
        name: 'expiring bound',
        authType: 'mtls',
        host: server.url,
        terminalId,
        settings: { caPem: pki.root.certPem },
        secrets: secrets(),
      });
      expect(created.status).toBe(201);
      expect(created.body.warnings).toEqual(expected());
      expect(await agentStatusOf(created.body.id)).toMatchObject({
        warnings: expected(),
        certificatesExpiringSoon: [
          { field: 'secrets.certPem', notAfter: expiringSoon.notAfter.toISOString() },
        ],
      });
      const read = await cp.api.call('GET', `/v1/accounts/${created.body.id}`);
      expect(read.body.warnings).toEqual(expected());
    });

    it('warns on an account with sealed secrets once the terminal has checked them', async () => {
      const sealed = controlPlaneCommand(
        ['seal', '--terminal', terminalId, '--url', cp.url, '--api-key', cp.adminKey],
        {},
        JSON.stringify(secrets()),
      );
      expect(sealed.code, sealed.stderr).toBe(0);
      const created = await cp.api.call('POST', '/v1/accounts', {
        name: 'expiring sealed',
        authType: 'mtls',
        host: server.url,
        terminalId,
        settings: { caPem: pki.root.certPem },
        sealedSecrets: sealed.stdout.trim(),
      });
      expect(created.status).toBe(201);
      // The control plane cannot read sealed secrets: only the terminal can tell.
      expect(created.body).toMatchObject({ warnings: [], secretFields: [] });

      expect(await warningsOnceReported(created.body.id)).toEqual(expected());
      const read = await cp.api.call('GET', `/v1/accounts/${created.body.id}`);
      expect(read.body.secretFields).toEqual(['certPem', 'keyPem']);
      expect(await agentStatusOf(created.body.id)).toMatchObject({
        warnings: expected(),
        certificatesExpiringSoon: [
          { field: 'secrets.certPem', notAfter: expiringSoon.notAfter.toISOString() },
        ],
      });
      expect(await runWho(created.body.id)).toEqual({
        state: 'succeeded',
        error: null,
        status: 200,
        body: chainSeen(expiringSoon),
      });
    });
  });

  describe('secrets refused at save', () => {
    const encryptedKey = () =>
      pki.client.key.export({
        type: 'pkcs8',
        format: 'pem',
        cipher: 'aes-256-cbc',
        passphrase: PASSPHRASE,
      }) as string;
    const certPem = () => chainPem(pki.client, pki.intermediate);

    /** [what, authType, secrets, field at fault, the secret value that must not be echoed]. */
    const refusals: Array<[string, string, () => Record<string, unknown>, string, string]> = [
      [
        'a wrong key passphrase',
        'mtls',
        () => ({ certPem: certPem(), keyPem: encryptedKey(), keyPassphrase: 'wrong horse' }),
        'secrets.keyPassphrase',
        'wrong horse',
      ],
      [
        'a wrong PKCS#12 password',
        'mtls',
        () => ({
          pfxBase64: createPfx(pki.client, [], PFX_PASSWORD, '3des'),
          keyPassphrase: 'not-the-pfx-pass',
        }),
        'secrets.keyPassphrase',
        'not-the-pfx-pass',
      ],
      [
        'a key that does not match its certificate',
        'mtls',
        () => ({ certPem: certPem(), keyPem: pki.clientEc.keyPem }),
        'secrets.keyPem',
        'PRIVATE KEY',
      ],
      [
        'a malformed certificate PEM',
        'mtls',
        () => ({
          certPem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
          keyPem: pki.client.keyPem,
        }),
        'secrets.certPem',
        'PRIVATE KEY',
      ],
      [
        'a malformed key PEM',
        'mtls',
        () => ({
          certPem: certPem(),
          keyPem: '-----BEGIN PRIVATE KEY-----\nQUFBQQ==\n-----END PRIVATE KEY-----\n',
        }),
        'secrets.keyPem',
        'QUFBQQ',
      ],
      [
        'a basic username with ":"',
        'basic',
        () => ({ username: 'ann:admin', password: 'pw-4417' }),
        'secrets.username',
        'pw-4417',
      ],
      [
        'a header value with CR/LF',
        'header',
        () => ({ headers: { 'X-Api-Key': 'key-77\r\nX-Injected: 1' } }),
        'secrets.headers.X-Api-Key',
        'key-77',
      ],
    ];

    describe.each(refusals)('%s', (_what, authType, secrets, field, secretValue) => {
      it.each(['terminal', 'direct'] as const)(
        'is refused with 400 INVALID_SECRET naming the field (%s)',
        async (where) => {
          const before = await cp.api.call('GET', '/v1/accounts');

          const res = await cp.api.call('POST', '/v1/accounts', {
            name: 'refused',
            authType,
            host: server.url,
            ...(where === 'terminal' ? { terminalId } : {}),
            secrets: secrets(),
          });

          expect(res.status).toBe(400);
          expect({ code: res.body.error.code, field: res.body.error.field }).toEqual({
            code: 'INVALID_SECRET',
            field,
          });
          expect(JSON.stringify(res.body)).not.toContain(secretValue);
          const after = await cp.api.call('GET', '/v1/accounts');
          expect(after.body.items).toHaveLength(before.body.items.length);
        },
      );
    });
  });
});
