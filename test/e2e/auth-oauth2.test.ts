/**
 * oauth2 tokens end to end through the HTTP API: renewal when the access token expires and after
 * a 401, rotated refresh tokens spent on the next refresh, tokens that survive a restart of the
 * agent process (they live in the agent's store), and a token endpoint behind mutual TLS reached
 * with the client certificate of another account (`mtlsAccountId`).
 */
import { setTimeout as sleep } from 'node:timers/promises';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startHttpFront, startMtlsFront, type MtlsFront } from '../fixtures/front-proxy.js';
import { startOAuthServer, type OAuthServer } from '../fixtures/oauth2-server.js';
import { chainPem, createPki, type TestPki } from '../helpers/pki.js';
import {
  cleanup,
  createAndEnroll,
  startAgent,
  startControlPlane,
  waitFor,
  type AgentProc,
  type ControlPlaneProc,
} from '../helpers/processes.js';

const CLIENT = {
  id: 'svc',
  secret: 's3cret-value',
  grants: ['client_credentials', 'refresh_token'],
};
const SECRETS = { clientId: CLIENT.id, clientSecret: CLIENT.secret };
const GRANTED = JSON.stringify({ ok: true, client: 'svc', user: 'svc' });
/** A token of one second is renewed after half of it (token-cache.ts REFRESH_MARGIN_MS). */
const SHORT_LIFETIME_MS = 1000;

describe('oauth2 tokens through a terminal and directly', () => {
  let cp: ControlPlaneProc;
  let agent: AgentProc;
  let terminalId: string;
  let agentDir: string;
  let pki: TestPki;
  const servers: Array<{ close(): Promise<void> }> = [];

  beforeAll(async () => {
    pki = createPki();
    cp = await startControlPlane();
    const enrolled = await createAndEnroll(cp, 'oauth-site');
    terminalId = enrolled.terminalId;
    agentDir = enrolled.dataDir;
    agent = await startAgent(cp, terminalId, agentDir);
  });

  afterAll(async () => {
    await agent?.stop();
    await cp?.stop();
    await Promise.all(servers.map((s) => s.close()));
    if (cp) cleanup(agentDir, cp.dataDir);
  });

  /** A token server whose answers say `expires_in` as `lifetime()` gives it (seconds). */
  async function tokenServer(lifetime: () => number = () => 3600): Promise<OAuthServer> {
    const server = await startOAuthServer({
      clients: [CLIENT],
      shapeAnswer: (answer) => ({ ...answer, expires_in: lifetime() }),
    });
    servers.push(server);
    return server;
  }

  async function createAccount(body: Record<string, unknown>): Promise<string> {
    const created = await cp.api.call('POST', '/v1/accounts', { name: 'oauth2', ...body });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    return created.body.id as string;
  }

  async function oauth2Account(
    server: OAuthServer,
    where: 'terminal' | 'direct',
    secrets: Record<string, unknown> = SECRETS,
  ): Promise<string> {
    return createAccount({
      authType: 'oauth2',
      host: server.base,
      ...(where === 'terminal' ? { terminalId } : {}),
      settings: { tokenUrl: server.tokenUrl, contentType: 'form' },
      secrets,
    });
  }

  /** Runs a GET and returns what the API answered about it. */
  async function get(accountId: string, path: string) {
    const res = await cp.api.call('POST', '/v1/jobs?wait=true', {
      accountId,
      request: { method: 'GET', path },
    });
    expect(res.status).toBe(200);
    return {
      state: res.body.state,
      error: res.body.error,
      status: res.body.response?.status,
      body: res.body.response?.body,
    };
  }

  const granted = { state: 'succeeded', error: null, status: 200, body: GRANTED };
  const callsOf = (server: OAuthServer) =>
    server.resourceCalls.map((c) => [c.url, c.authorization, c.status]);
  const refreshTokensSpent = (server: OAuthServer) =>
    server.tokenCalls.map((c) => [c.params.grant_type, c.params.refresh_token]);

  it('renews an expired token and a refused one through the terminal, spending each rotated refresh token', async () => {
    let lifetime = SHORT_LIFETIME_MS / 1000;
    const server = await tokenServer(() => lifetime);
    server.seedRefreshToken('svc', 'rt-seed');
    const accountId = await oauth2Account(server, 'terminal', {
      ...SECRETS,
      refreshToken: 'rt-seed',
    });

    expect(await get(accountId, '/a')).toEqual(granted);
    // The server would still take at-1 for an hour; the agent renews it because it said 1 s.
    await sleep(SHORT_LIFETIME_MS);
    lifetime = 3600;
    expect(await get(accountId, '/b')).toEqual(granted);
    server.revokeAccessToken('at-3');
    expect(await get(accountId, '/c')).toEqual(granted);
    expect(await get(accountId, '/d')).toEqual(granted);

    expect(refreshTokensSpent(server)).toEqual([
      ['refresh_token', 'rt-seed'],
      ['refresh_token', 'rt-2'],
      ['refresh_token', 'rt-4'],
    ]);
    expect(callsOf(server)).toEqual([
      ['/a', 'Bearer at-1', 200],
      ['/b', 'Bearer at-3', 200],
      ['/c', 'Bearer at-3', 401],
      ['/c', 'Bearer at-5', 200],
      ['/d', 'Bearer at-5', 200],
    ]);
  });

  it('renews a refused token directly from the control plane, spending the rotated refresh token', async () => {
    const server = await tokenServer();
    server.seedRefreshToken('svc', 'rt-seed');
    const accountId = await oauth2Account(server, 'direct', {
      ...SECRETS,
      refreshToken: 'rt-seed',
    });

    expect(await get(accountId, '/a')).toEqual(granted);
    server.revokeAccessToken('at-1');
    expect(await get(accountId, '/b')).toEqual(granted);
    server.revokeAccessToken('at-3');
    expect(await get(accountId, '/c')).toEqual(granted);

    expect(refreshTokensSpent(server)).toEqual([
      ['refresh_token', 'rt-seed'],
      ['refresh_token', 'rt-2'],
      ['refresh_token', 'rt-4'],
    ]);
    expect(callsOf(server)).toEqual([
      ['/a', 'Bearer at-1', 200],
      ['/b', 'Bearer at-1', 401],
      ['/b', 'Bearer at-3', 200],
      ['/c', 'Bearer at-3', 401],
      ['/c', 'Bearer at-5', 200],
    ]);
  });

  it.each(['terminal', 'direct'] as const)(
    "reaches a token URL on another port than the account's host when run %s",
    async (where) => {
      // Only the token URL names this port: the terminal allows it as the account's extra origin.
      const tokens = await tokenServer();
      const front = await startHttpFront(tokens.base);
      servers.push(front);
      const accountId = await createAccount({
        authType: 'oauth2',
        host: front.url,
        ...(where === 'terminal' ? { terminalId } : {}),
        settings: { tokenUrl: tokens.tokenUrl },
        secrets: SECRETS,
      });

      expect(await get(accountId, '/via-front')).toEqual(granted);

      expect(front.calls).toEqual([{ method: 'GET', url: '/via-front' }]);
      expect(tokens.tokenCalls.map((c) => [c.url, c.params.grant_type])).toEqual([
        ['/token', 'client_credentials'],
      ]);
    },
  );

  describe('a token endpoint behind mutual TLS', () => {
    let tokens: OAuthServer;
    let front: MtlsFront;

    beforeAll(async () => {
      tokens = await tokenServer();
      front = await startMtlsFront({
        certPem: chainPem(pki.server, pki.intermediate),
        keyPem: pki.server.keyPem,
        clientCaPem: pki.root.certPem,
        target: tokens.base,
      });
      servers.push(front);
    });

    it.each(['terminal', 'direct'] as const)(
      'is reached with the client certificate of the mtlsAccountId account when run %s',
      async (where) => {
        const mtlsId = await createAccount({
          authType: 'mtls',
          host: front.url,
          ...(where === 'terminal' ? { terminalId } : {}),
          settings: { caPem: pki.root.certPem },
          secrets: { certPem: chainPem(pki.client, pki.intermediate), keyPem: pki.client.keyPem },
        });
        const accountId = await createAccount({
          authType: 'oauth2',
          host: tokens.base,
          ...(where === 'terminal' ? { terminalId } : {}),
          settings: { tokenUrl: `${front.url}/token`, contentType: 'form', mtlsAccountId: mtlsId },
          secrets: SECRETS,
        });
        const before = front.calls.length;

        expect(await get(accountId, `/${where}`)).toEqual(granted);

        expect(front.calls.slice(before)).toEqual([
          { method: 'POST', url: '/token', clientCommonName: 'Outpost Test Client' },
        ]);
        expect(tokens.tokenCalls.at(-1)!.params).toEqual({
          grant_type: 'client_credentials',
          client_id: 'svc',
          client_secret: 's3cret-value',
        });
      },
    );

    it.each(['terminal', 'direct'] as const)(
      'refuses the token request without a client certificate, as TLS_FAILED, when run %s',
      async (where) => {
        const accountId = await createAccount({
          authType: 'oauth2',
          host: tokens.base,
          ...(where === 'terminal' ? { terminalId } : {}),
          settings: { tokenUrl: `${front.url}/token`, caPem: pki.root.certPem },
          secrets: SECRETS,
        });
        const before = {
          front: front.calls.length,
          refused: front.refusedHandshakes(),
          tokens: tokens.tokenCalls.length,
        };

        const answer = await get(accountId, '/anonymous');

        expect(answer).toMatchObject({ state: 'failed', status: undefined });
        expect(answer.error).toEqual({
          code: 'TLS_FAILED',
          message:
            'the target closed the connection right after the TLS handshake without answering: ' +
            'it may require a client certificate, and this account sends none',
        });
        expect(front.refusedHandshakes()).toBe(before.refused + 1);
        expect(front.calls.length).toBe(before.front);
        expect(tokens.tokenCalls.length).toBe(before.tokens);
      },
    );
  });

  // Last: it restarts the file's agent.
  it('keeps tokens across a restart of the agent, and renews only the one that expired', async () => {
    const lasting = await tokenServer();
    const shortLived = await tokenServer(() => SHORT_LIFETIME_MS / 1000);
    const lastingId = await oauth2Account(lasting, 'terminal');
    const shortId = await oauth2Account(shortLived, 'terminal');
    expect(await get(lastingId, '/before')).toEqual(granted);
    expect(await get(shortId, '/before')).toEqual(granted);
    const shortIssuedAt = Date.now();

    await agent.stop('SIGTERM');
    expect(agent.child.exitCode).toBe(0);
    await waitFor('the terminal to go offline', async () => {
      const t = await cp.api.call('GET', `/v1/terminals/${terminalId}`);
      return t.body.status === 'offline' ? true : undefined;
    });
    agent = await startAgent(cp, terminalId, agentDir);
    await sleep(Math.max(0, shortIssuedAt + SHORT_LIFETIME_MS - Date.now()));

    expect(await get(lastingId, '/after')).toEqual(granted);
    expect(await get(shortId, '/after')).toEqual(granted);
    expect(refreshTokensSpent(lasting)).toEqual([['client_credentials', undefined]]);
    expect(callsOf(lasting)).toEqual([
      ['/before', 'Bearer at-1', 200],
      ['/after', 'Bearer at-1', 200],
    ]);
    expect(refreshTokensSpent(shortLived)).toEqual([
      ['client_credentials', undefined],
      ['client_credentials', undefined],
    ]);
    expect(callsOf(shortLived)).toEqual([
      ['/before', 'Bearer at-1', 200],
      ['/after', 'Bearer at-2', 200],
    ]);
  });
});
