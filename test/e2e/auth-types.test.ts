/**
 * Every auth type end to end, driven only through the HTTP API: the account is created with its
 * secrets in the clear, a job runs with `?wait=true`, and the answer must be exactly what the
 * verifying server on loopback gives a correctly authenticated request. Each type runs twice:
 * through a real terminal (the agent process holds the sealed secrets) and directly from the
 * control plane (an account without a terminal).
 */
import { generateKeyPairSync } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startCookieServer, type CookieServer } from '../fixtures/cookie-server.js';
import { startCredentialServer, type CredentialServer } from '../fixtures/credential-server.js';
import { startOAuth1Server, type OAuth1Server } from '../fixtures/oauth1-server.js';
import { JWT_BEARER_GRANT, startOAuthServer, type OAuthServer } from '../fixtures/oauth2-server.js';
import { startSigV4Server, type SigV4Server } from '../fixtures/sigv4-server.js';
import {
  chainPem,
  createPki,
  startTlsServer,
  type TestPki,
  type TlsTestServer,
} from '../helpers/pki.js';
import {
  cleanup,
  createAndEnroll,
  startAgent,
  startControlPlane,
  type AgentProc,
  type ControlPlaneProc,
} from '../helpers/processes.js';

const BASIC = { username: 'ann', password: 'pa:ss wörd' };
const BEARER = 'bearer-token-7f3a';
const API_KEY = { name: 'x-api-key', value: 'key-1b9c' };
const OAUTH1 = {
  consumerKey: 'ck-1',
  consumerSecret: 'cs&secret%',
  token: 'tok-1',
  tokenSecret: 'ts secret',
};
const AWS = { accessKeyId: 'AKIDE2E', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYE2E' };
const CLIENT = { id: 'svc', secret: 's3cret-value', grants: ['client_credentials'] };
const JWT_CLIENT = { id: 'svc-jwt', grants: [JWT_BEARER_GRANT] };
const JWT_AUDIENCE = 'https://idp.example.test/token';
const LOGIN = { user: 'ann', pass: 'p w' };
const KEY_PASSPHRASE = 'correct horse';
const jwtKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });

/** One auth type: how its account is made, the job to run, and the answer it must get. */
interface TypeCase {
  authType: string;
  host(): string;
  settings?(): Record<string, unknown>;
  secrets?(): Record<string, unknown>;
  request: Record<string, unknown>;
  answer(): { status: number; body: string };
}

describe('every auth type, through a terminal and directly from the control plane', () => {
  let cp: ControlPlaneProc;
  let agent: AgentProc;
  let terminalId: string;
  let pki: TestPki;
  let credentials: CredentialServer;
  let oauth1: OAuth1Server;
  let oauth2: OAuthServer;
  let jwtServer: OAuthServer;
  let cookies: CookieServer;
  let sigv4: SigV4Server;
  let trusted: TlsTestServer;
  let mutual: TlsTestServer;

  beforeAll(async () => {
    pki = createPki();
    const serverChain = chainPem(pki.server, pki.intermediate);
    [credentials, oauth1, oauth2, jwtServer, cookies, sigv4, trusted, mutual] = await Promise.all([
      startCredentialServer({ basic: BASIC, bearer: BEARER, header: API_KEY }),
      startOAuth1Server({
        consumers: new Map([[OAUTH1.consumerKey, OAUTH1.consumerSecret]]),
        tokens: new Map([[OAUTH1.token, OAUTH1.tokenSecret]]),
      }),
      startOAuthServer({ clients: [CLIENT] }),
      startOAuthServer({
        clients: [JWT_CLIENT],
        jwtBearer: {
          publicKey: jwtKeys.publicKey,
          algorithm: 'RS256',
          issuer: JWT_CLIENT.id,
          audience: JWT_AUDIENCE,
          keyId: 'k1',
          lifetimeSeconds: 3600,
          now: Date.now,
        },
      }),
      startCookieServer(LOGIN),
      startSigV4Server(new Map([[AWS.accessKeyId, AWS.secretAccessKey]])),
      startTlsServer({ certPem: serverChain, keyPem: pki.server.keyPem }),
      startTlsServer({
        certPem: serverChain,
        keyPem: pki.server.keyPem,
        clientCaPem: pki.root.certPem,
      }),
    ]);
    cp = await startControlPlane();
    const enrolled = await createAndEnroll(cp, 'auth-site');
    terminalId = enrolled.terminalId;
    agent = await startAgent(cp, terminalId, enrolled.dataDir);
  });

  afterAll(async () => {
    await agent?.stop();
    await cp?.stop();
    await Promise.all(
      [credentials, oauth1, oauth2, jwtServer, cookies, sigv4, trusted, mutual].map((s) =>
        s?.close(),
      ),
    );
    if (agent && cp) cleanup(agent.dataDir, cp.dataDir);
  });

  const json = (value: unknown) => JSON.stringify(value);

  const cases: TypeCase[] = [
    {
      authType: 'none',
      host: () => credentials.base,
      request: { method: 'GET', path: '/public' },
      answer: () => ({ status: 200, body: json({ authenticated: null }) }),
    },
    {
      authType: 'basic',
      host: () => credentials.base,
      secrets: () => BASIC,
      request: { method: 'GET', path: '/private' },
      answer: () => ({ status: 200, body: json({ authenticated: 'basic', user: 'ann' }) }),
    },
    {
      authType: 'bearer',
      host: () => credentials.base,
      secrets: () => ({ token: BEARER }),
      request: { method: 'GET', path: '/private' },
      answer: () => ({ status: 200, body: json({ authenticated: 'bearer' }) }),
    },
    {
      authType: 'header',
      host: () => credentials.base,
      secrets: () => ({ headers: { 'X-Api-Key': API_KEY.value } }),
      request: { method: 'GET', path: '/private' },
      answer: () => ({ status: 200, body: json({ authenticated: 'header', header: 'x-api-key' }) }),
    },
    {
      authType: 'oauth1',
      host: () => oauth1.url,
      settings: () => ({ signatureMethod: 'HMAC-SHA256', realm: 'outpost' }),
      secrets: () => OAUTH1,
      // A form body takes part in the OAuth 1 signature base string.
      request: {
        method: 'POST',
        path: '/statuses',
        query: { q: 'a b', n: [1, 2] },
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'status=hello+world&x=%7E',
      },
      answer: () => ({ status: 200, body: json({ ok: true, reason: 'signature matches' }) }),
    },
    {
      authType: 'oauth2',
      host: () => oauth2.base,
      settings: () => ({ tokenUrl: oauth2.tokenUrl, contentType: 'form' }),
      secrets: () => ({ clientId: CLIENT.id, clientSecret: CLIENT.secret }),
      request: { method: 'GET', path: '/items' },
      answer: () => ({ status: 200, body: json({ ok: true, client: 'svc', user: 'svc' }) }),
    },
    {
      authType: 'oauth2-jwt',
      host: () => jwtServer.base,
      settings: () => ({
        tokenUrl: jwtServer.tokenUrl,
        keyId: 'k1',
        claims: { iss: JWT_CLIENT.id, aud: JWT_AUDIENCE, scope: 'read', sub: 'user-1' },
      }),
      secrets: () => ({
        privateKeyPem: jwtKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }),
      }),
      request: { method: 'GET', path: '/data' },
      answer: () => ({ status: 200, body: json({ ok: true, client: 'svc-jwt', user: 'user-1' }) }),
    },
    {
      authType: 'cookie',
      host: () => cookies.base,
      settings: () => ({ loginPath: '/api/login' }),
      secrets: () => ({ loginBody: LOGIN }),
      request: { method: 'GET', path: '/api/items' },
      answer: () => ({ status: 200, body: 'ok' }),
    },
    {
      authType: 'aws',
      host: () => sigv4.url,
      settings: () => ({ service: 'execute-api', region: 'eu-west-1' }),
      secrets: () => AWS,
      request: {
        method: 'POST',
        path: '/prod/items',
        query: { 'page size': 10, tag: ['a', 'b'] },
        body: { name: 'x' },
      },
      answer: () => ({ status: 200, body: json({ ok: true, reason: 'signature matches' }) }),
    },
    {
      authType: 'ca-certificate',
      host: () => trusted.url,
      settings: () => ({ caPem: pki.root.certPem }),
      request: { method: 'GET', path: '/who' },
      answer: () => ({ status: 200, body: json({ clientChain: [] }) }),
    },
    {
      authType: 'mtls',
      host: () => mutual.url,
      settings: () => ({ caPem: pki.root.certPem }),
      secrets: () => ({
        certPem: chainPem(pki.client, pki.intermediate),
        keyPem: pki.client.key.export({
          type: 'pkcs8',
          format: 'pem',
          cipher: 'aes-256-cbc',
          passphrase: KEY_PASSPHRASE,
        }),
        keyPassphrase: KEY_PASSPHRASE,
      }),
      request: { method: 'GET', path: '/who' },
      answer: () => ({
        status: 200,
        body: json({
          clientChain: [
            'Outpost Test Client',
            'Outpost Test Intermediate CA',
            'Outpost Test Root CA',
          ],
        }),
      }),
    },
  ];

  it('covers all eleven auth types', () => {
    expect(cases.map((c) => c.authType).sort()).toEqual(
      [
        'aws',
        'basic',
        'bearer',
        'ca-certificate',
        'cookie',
        'header',
        'mtls',
        'none',
        'oauth1',
        'oauth2',
        'oauth2-jwt',
      ].sort(),
    );
  });

  describe.each(cases)('authType $authType', (c) => {
    it.each(['terminal', 'direct'] as const)(
      'gets the verifying server’s exact answer when run %s',
      async (path) => {
        const secrets = c.secrets?.();
        const created = await cp.api.call('POST', '/v1/accounts', {
          name: `${c.authType} ${path}`,
          authType: c.authType,
          host: c.host(),
          ...(path === 'terminal' ? { terminalId } : {}),
          ...(c.settings ? { settings: c.settings() } : {}),
          ...(secrets ? { secrets } : {}),
        });
        expect(created.status).toBe(201);
        expect(created.body).toMatchObject({
          terminalId: path === 'terminal' ? terminalId : null,
          secretFields: Object.keys(secrets ?? {}).sort(),
          secretsSealed: path === 'terminal',
          warnings: [],
        });
        for (const value of Object.values(secrets ?? {}).filter((v) => typeof v === 'string')) {
          expect(JSON.stringify(created.body)).not.toContain(value);
        }

        const res = await cp.api.call('POST', '/v1/jobs?wait=true', {
          accountId: created.body.id,
          request: c.request,
        });

        expect(res.status).toBe(200);
        expect({
          state: res.body.state,
          error: res.body.error,
          terminalId: res.body.terminalId,
          status: res.body.response?.status,
          body: res.body.response?.body,
        }).toEqual({
          state: 'succeeded',
          error: null,
          terminalId: path === 'terminal' ? terminalId : null,
          ...c.answer(),
        });
      },
    );
  });
});
