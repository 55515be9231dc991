import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { chainPem, createPki } from '../helpers/pki.js';
import {
  agentCommand,
  cleanup,
  createAndEnroll,
  startAgent,
  startControlPlane,
  type AgentProc,
  type ControlPlaneProc,
} from '../helpers/processes.js';
import { recordingServer, type RecordingServer } from './security-fixtures.js';

const TOKEN = 'tok-destinations-7d1c';

/** Answers `/to?u=URL` with a 302 to URL, anything else with 200. */
function redirecting(req: { url: string }) {
  const u = new URL(req.url, 'http://x').searchParams.get('u');
  return u ? { status: 302, headers: { location: u } } : { status: 200, body: 'here' };
}

describe('a terminal asked to reach hosts it was not given', () => {
  let cp: ControlPlaneProc;
  let agent: AgentProc;
  let dataDir: string;
  let terminalId: string;
  let a: RecordingServer;
  let b: RecordingServer;
  let tls: HttpsServer;
  let tlsUrl: string;
  const accounts: Record<string, string> = {};

  const job = (account: string, request: object) =>
    cp.api.call('POST', '/v1/jobs?wait=true', { accountId: accounts[account], request });

  beforeAll(async () => {
    a = await recordingServer(redirecting, '127.0.0.1');
    b = await recordingServer(() => ({ status: 200, body: 'b' }), '127.0.0.2');
    const pki = createPki('Destinations');
    tls = createHttpsServer({ cert: pki.server.certPem, key: pki.server.keyPem }, (req, res) => {
      res.writeHead(302, { location: `${a.url}/plain` });
      res.end();
    });
    await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
    tlsUrl = `https://127.0.0.1:${(tls.address() as AddressInfo).port}`;
    cp = await startControlPlane();
    ({ terminalId, dataDir } = await createAndEnroll(cp, 'site'));
    agent = await startAgent(cp, terminalId, dataDir);
    const create = async (name: string, host: string, settings: object = {}) => {
      const r = await cp.api.call('POST', '/v1/accounts', {
        name,
        authType: 'bearer',
        host,
        terminalId,
        settings,
        secrets: { token: TOKEN },
      });
      expect(r.status).toBe(201);
      accounts[name] = r.body.id;
    };
    await create('plain', a.url);
    await create('follow', a.url, { followRedirects: true });
    await create('tls', tlsUrl, {
      followRedirects: true,
      caPem: chainPem(pki.root, pki.intermediate),
    });
  });

  afterAll(async () => {
    await agent?.stop();
    await cp?.stop();
    await a?.close();
    await b?.close();
    tls?.close();
    cleanup(cp.dataDir, dataDir);
  });

  it('does not follow a redirect unless the account allows it', async () => {
    const res = await job('plain', { method: 'GET', path: '/to', query: { u: `${b.url}/x` } });
    expect(res.body.state).toBe('succeeded');
    expect(res.body.response.status).toBe(302);
    expect(b.seen).toEqual([]);
  });

  it('refuses a redirect to an address it does not hold', async () => {
    const res = await job('follow', { method: 'GET', path: '/to', query: { u: `${b.url}/x` } });
    expect(res.body.state).toBe('failed');
    expect(res.body.error.code).toBe('TARGET_FORBIDDEN');
    expect(b.seen).toEqual([]);
  });

  it('refuses a redirect to a name that resolves to an address it holds', async () => {
    const before = a.seen.length;
    const res = await job('follow', {
      method: 'GET',
      path: '/to',
      query: { u: `http://localhost:${a.port}/by-name` },
    });
    expect(res.body.state).toBe('failed');
    expect(res.body.error.code).toBe('TARGET_FORBIDDEN');
    expect(a.seen.slice(before).map((r) => r.url)).toEqual([
      `/to?u=${encodeURIComponent(`http://localhost:${a.port}/by-name`)}`,
    ]);
  });

  it('refuses to follow HTTPS to plain HTTP even to a host it holds', async () => {
    const before = a.seen.length;
    const res = await job('tls', { method: 'GET', path: '/start' });
    expect(res.body.state).toBe('failed');
    expect(res.body.error.code).toBe('REDIRECT_REFUSED');
    expect(a.seen.length).toBe(before);
  });

  it('follows a redirect to its local allowlist, without the credentials', async () => {
    expect(agentCommand(['allow', 'add', `127.0.0.2:${b.port}`, '--data-dir', dataDir]).code).toBe(
      0,
    );
    try {
      const res = await job('follow', { method: 'GET', path: '/to', query: { u: `${b.url}/y` } });
      expect(res.body.state).toBe('succeeded');
      expect(res.body.response.body).toBe('b');
      expect(a.seen.at(-1)!.headers.authorization).toBe(`Bearer ${TOKEN}`);
      expect(b.seen.map((r) => [r.url, r.headers.authorization])).toEqual([['/y', undefined]]);
    } finally {
      agentCommand(['allow', 'remove', `127.0.0.2:${b.port}`, '--data-dir', dataDir]);
    }
  });

  it('keeps every path on the account host, or refuses it', async () => {
    const tricks = [
      `//127.0.0.2:${b.port}/x`,
      `@127.0.0.2:${b.port}/x`,
      `http://127.0.0.2:${b.port}/x`,
      `/..%2f..%2fx`,
      `/%2e%2e/%2e%2e/x`,
      `\\\\127.0.0.2:${b.port}\\x`,
      `/x/../../y`,
    ];
    const outcomes: string[] = [];
    const bBefore = b.seen.length;
    for (const p of tricks) {
      const before = a.seen.length;
      const res = await job('plain', { method: 'GET', path: p });
      if (res.status === 400) outcomes.push(`${p} -> ${res.body.error.code}`);
      else outcomes.push(`${p} -> ${res.body.state} at ${a.seen.slice(before)[0]?.url}`);
    }
    expect(b.seen.length).toBe(bBefore);
    expect(outcomes).toEqual([
      `//127.0.0.2:${b.port}/x -> succeeded at /127.0.0.2:${b.port}/x`,
      `@127.0.0.2:${b.port}/x -> succeeded at /@127.0.0.2:${b.port}/x`,
      `http://127.0.0.2:${b.port}/x -> succeeded at /http://127.0.0.2:${b.port}/x`,
      `/..%2f..%2fx -> succeeded at /..%2f..%2fx`,
      // Dot segments are resolved the WHATWG way and can never climb above the root.
      `/%2e%2e/%2e%2e/x -> INVALID_TARGET`,
      `\\\\127.0.0.2:${b.port}\\x -> succeeded at /127.0.0.2:${b.port}/x`,
      `/x/../../y -> INVALID_TARGET`,
    ]);
  });

  it('refuses framing, hop-by-hop and proxy headers and any CR or LF', async () => {
    const bad: Array<Record<string, string>> = [
      { 'x-a': 'v\r\nx-injected: 1' },
      { 'x-a': 'v\nx-injected: 1' },
      { 'x-a': 'v\rx' },
      { 'x-a\r\nx-injected': 'v' },
      { Host: '127.0.0.2' },
      { 'Content-Length': '0' },
      { 'Transfer-Encoding': 'chunked' },
      { Connection: 'close' },
      { Upgrade: 'websocket' },
      { 'Proxy-Authorization': 'Basic eA==' },
      { 'Proxy-Connection': 'keep-alive' },
    ];
    const codes: string[] = [];
    for (const headers of bad) {
      const res = await job('plain', { method: 'GET', path: '/h', headers });
      codes.push(`${res.status} ${res.body.error?.code}`);
    }
    expect(codes).toEqual(bad.map(() => '400 INVALID_HEADER'));
    expect(a.seen.some((r) => r.url === '/h')).toBe(false);
  });

  it('needs the secrets again to point a held account at another host', async () => {
    const res = await cp.api.call('PATCH', `/v1/accounts/${accounts.plain}`, {
      host: b.url,
    });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('SECRETS_REQUIRED');
  });

  it('never sends old secrets to a host a hostile control plane swapped in', async () => {
    // The control plane's own checks are bypassed: its database is edited directly, the way a
    // compromised control plane could, and the agent gets the account on its next connection.
    await agent.stop();
    const bBefore = b.seen.length;
    const db = new Database(path.join(cp.dataDir, 'control-plane.db'));
    db.prepare('UPDATE accounts SET host = ?, revision = revision + 1 WHERE id = ?').run(
      b.url,
      accounts.plain,
    );
    db.close();
    agent = await startAgent(cp, terminalId, dataDir);
    const res = await job('plain', { method: 'GET', path: '/swapped' });
    // The token sealed for the old host is not opened for the new one, and a bearer account
    // without its token fails the job rather than send a request without credentials.
    expect(res.body.state).toBe('failed');
    expect(res.body.error.code).toBe('INVALID_SECRET');
    expect(b.seen.slice(bBefore)).toEqual([]);
    expect(JSON.stringify(b.seen)).not.toContain(TOKEN);
    const listed = agentCommand(['accounts', 'list', '--json', '--data-dir', dataDir]);
    const plain = (JSON.parse(listed.stdout) as Array<{ id: string; warnings: string[] }>).find(
      (x) => x.id === accounts.plain,
    )!;
    expect(plain.warnings.join(' ')).toContain('sealed for another account or another host');
  });
});
