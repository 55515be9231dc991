import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startOAuthServer, type OAuthServer } from '../fixtures/oauth2-server.js';
import { chainPem, createPki } from '../helpers/pki.js';
import {
  agentCommand,
  cleanup,
  controlPlaneCommand,
  createAndEnroll,
  startAgent,
  startControlPlane,
  type AgentProc,
  type ControlPlaneProc,
} from '../helpers/processes.js';
import { recordingServer, type RecordingServer } from './security-fixtures.js';

/** Unique values that must never appear in the clear anywhere on either side. */
const CANARY = {
  directUser: 'cnry-direct-user-5b1e',
  directPassword: 'cnry-direct-pass-93af',
  boundUser: 'cnry-bound-user-0c77',
  boundPassword: 'cnry-bound-pass-d4e2',
  sealedToken: 'cnry-sealed-token-6a0f',
  apiKey: 'cnry-header-key-21bd',
  oauthSecret: 'cnry-oauth-secret-8e35',
  onSitePassword: 'cnry-onsite-pass-f19a',
};

/** Every file under a folder, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

describe('the canary: known secrets run through every flow and are found nowhere', () => {
  let cp: ControlPlaneProc;
  let agent: AgentProc;
  let dataDir: string;
  let terminalId: string;
  let target: RecordingServer;
  let oauth: OAuthServer;
  let mtls: HttpsServer;
  let mtlsUrl: string;
  let clientKeyPem: string;
  const answers: string[] = [];
  const accounts: Record<string, string> = {};

  const call = async (method: string, p: string, body?: unknown) => {
    const res = await cp.api.call(method, p, body);
    answers.push(JSON.stringify(res.body), JSON.stringify([...res.headers]));
    return res;
  };

  /** Every value to look for: the canaries, their Basic forms, tokens obtained, the key. */
  const secretForms = () => {
    const basic = (u: string, p: string) => Buffer.from(`${u}:${p}`).toString('base64');
    const obtained = oauth.resourceCalls
      .map((c) => c.authorization?.replace(/^Bearer /, ''))
      .filter((t): t is string => t !== undefined && t !== '');
    const keyLine = clientKeyPem.split('\n')[5]!;
    return [
      ...Object.values(CANARY),
      basic(CANARY.directUser, CANARY.directPassword),
      basic(CANARY.boundUser, CANARY.boundPassword),
      basic(CANARY.boundUser, CANARY.onSitePassword),
      basic('canary-client', CANARY.oauthSecret),
      ...new Set(obtained),
      keyLine,
    ];
  };

  const findings = (where: string, text: string) =>
    secretForms()
      .filter((s) => text.includes(s))
      .map((s) => `${s} in ${where}`);

  const scanDataDirs = () =>
    [cp.dataDir, dataDir].flatMap((dir) =>
      filesUnder(dir).flatMap((f) => findings(f, readFileSync(f).toString('latin1'))),
    );

  beforeAll(async () => {
    target = await recordingServer((req) =>
      req.headers.authorization || req.headers['x-api-key']
        ? { status: 200, body: 'fine' }
        : { status: 401 },
    );
    oauth = await startOAuthServer({
      clients: [
        { id: 'canary-client', secret: CANARY.oauthSecret, grants: ['client_credentials'] },
      ],
    });
    const pki = createPki('Canary');
    clientKeyPem = pki.client.keyPem;
    mtls = createHttpsServer(
      {
        cert: chainPem(pki.server, pki.intermediate),
        key: pki.server.keyPem,
        ca: chainPem(pki.root, pki.intermediate),
        requestCert: true,
        rejectUnauthorized: true,
      },
      (_req, res) => res.end('mtls fine'),
    );
    await new Promise<void>((r) => mtls.listen(0, '127.0.0.1', r));
    mtlsUrl = `https://127.0.0.1:${(mtls.address() as AddressInfo).port}`;

    cp = await startControlPlane({ env: { OUTPOST_LOG_LEVEL: 'debug' } });
    ({ terminalId, dataDir } = await createAndEnroll(cp, 'canary-site'));
    agent = await startAgent(cp, terminalId, dataDir, [], { OUTPOST_LOG_LEVEL: 'debug' });

    const create = async (name: string, body: object) => {
      const res = await call('POST', '/v1/accounts', { name, ...body });
      expect(res.status).toBe(201);
      accounts[name] = res.body.id;
    };
    await create('direct-basic', {
      authType: 'basic',
      host: target.url,
      secrets: { username: CANARY.directUser, password: CANARY.directPassword },
    });
    await create('direct-oauth2', {
      authType: 'oauth2',
      host: oauth.base,
      settings: { tokenUrl: oauth.tokenUrl, contentType: 'form' },
      secrets: { clientId: 'canary-client', clientSecret: CANARY.oauthSecret },
    });
    await create('bound-basic', {
      authType: 'basic',
      host: target.url,
      terminalId,
      secrets: { username: CANARY.boundUser, password: CANARY.boundPassword },
    });
    await create('bound-header', {
      authType: 'header',
      host: target.url,
      terminalId,
      secrets: { headers: { 'X-Api-Key': CANARY.apiKey } },
    });
    await create('bound-oauth2', {
      authType: 'oauth2',
      host: oauth.base,
      terminalId,
      settings: { tokenUrl: oauth.tokenUrl, contentType: 'form' },
      secrets: { clientId: 'canary-client', clientSecret: CANARY.oauthSecret },
    });
    await create('bound-mtls', {
      authType: 'mtls',
      host: mtlsUrl,
      terminalId,
      settings: { caPem: chainPem(pki.root, pki.intermediate) },
      secrets: { certPem: pki.client.certPem, keyPem: pki.client.keyPem },
    });
  });

  afterAll(async () => {
    await agent?.stop();
    await cp?.stop();
    await target?.close();
    await oauth?.close();
    mtls?.close();
    cleanup(cp.dataDir, dataDir);
  });

  it('runs a job through every account, each succeeding with the target answering 200', async () => {
    const states: string[] = [];
    for (const name of Object.keys(accounts)) {
      const res = await call('POST', '/v1/jobs?wait=true', {
        accountId: accounts[name],
        request: { method: 'GET', path: '/resource' },
      });
      states.push(`${name} ${res.body.state} ${res.body.response?.status}`);
    }
    expect(states).toEqual(Object.keys(accounts).map((n) => `${n} succeeded 200`));
    expect(oauth.resourceCalls.length).toBe(2);
  });

  it('runs a bearer account whose token the operator sealed, unseen by the control plane', async () => {
    const sealed = controlPlaneCommand(
      ['seal', '--terminal', terminalId, '--url', cp.url, '--api-key', cp.adminKey],
      {},
      JSON.stringify({ token: CANARY.sealedToken }),
    );
    expect(sealed.code).toBe(0);
    const created = await call('POST', '/v1/accounts', {
      name: 'operator-sealed',
      authType: 'bearer',
      host: target.url,
      terminalId,
      sealedSecrets: sealed.stdout.trim(),
    });
    expect(created.status).toBe(201);
    const res = await call('POST', '/v1/jobs?wait=true', {
      accountId: created.body.id,
      request: { method: 'GET', path: '/sealed' },
    });
    expect(res.body.state).toBe('succeeded');
    expect(target.seen.at(-1)!.headers.authorization).toBe(`Bearer ${CANARY.sealedToken}`);
  });

  it('runs a Basic account whose password was set on site and never crossed the network', async () => {
    // The user name travels sealed; the password is typed on the terminal's machine only.
    const sealed = controlPlaneCommand(
      ['seal', '--terminal', terminalId, '--url', cp.url, '--api-key', cp.adminKey],
      {},
      JSON.stringify({ username: CANARY.boundUser }),
    );
    const created = await call('POST', '/v1/accounts', {
      name: 'on-site',
      authType: 'basic',
      host: target.url,
      terminalId,
      sealedSecrets: sealed.stdout.trim(),
    });
    expect(created.status).toBe(201);
    const set = agentCommand(
      ['accounts', 'set-secret', created.body.id, 'password', '--data-dir', dataDir],
      {},
      `${CANARY.onSitePassword}\n`,
    );
    expect(set.stderr).toBe('');
    expect(set.code).toBe(0);
    const res = await call('POST', '/v1/jobs?wait=true', {
      accountId: created.body.id,
      request: { method: 'GET', path: '/on-site' },
    });
    expect(res.body.state).toBe('succeeded');
    const expected = Buffer.from(`${CANARY.boundUser}:${CANARY.onSitePassword}`).toString('base64');
    expect(target.seen.at(-1)!.headers.authorization).toBe(`Basic ${expected}`);
  });

  it('finds no secret in any API answer, job, audit entry or terminal log', async () => {
    await call('GET', '/v1/accounts');
    await call('GET', '/v1/jobs');
    await call('GET', '/v1/audit');
    await call('GET', `/v1/terminals/${terminalId}/logs`);
    for (const id of Object.values(accounts)) await call('GET', `/v1/accounts/${id}`);
    expect(answers.flatMap((a, i) => findings(`answer ${i}`, a))).toEqual([]);
  });

  it('finds no secret in any file of either data dir while both run (WAL included)', () => {
    expect(filesUnder(cp.dataDir).some((f) => f.endsWith('-wal'))).toBe(true);
    expect(scanDataDirs()).toEqual([]);
  });

  it('finds no secret in any log line or file once both have stopped', async () => {
    await agent.stop();
    await cp.stop();
    const logs = [
      findings('control plane stdout', cp.stdout()),
      findings('control plane stderr', cp.stderr()),
      findings('agent stdout', agent.stdout()),
      findings('agent stderr', agent.stderr()),
    ].flat();
    expect(logs).toEqual([]);
    expect(filesUnder(path.join(dataDir, 'logs')).length).toBeGreaterThan(0);
    expect(scanDataDirs()).toEqual([]);
  });
});
