import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { chainPem, createPki, startTlsServer, type TlsTestServer } from '../helpers/pki.js';
import {
  createAndEnroll,
  startAgent,
  startControlPlane,
  waitFor,
  waitForJob,
  type AgentProc,
  type ControlPlaneProc,
} from '../helpers/processes.js';

describe('the terminal as the cloud sees it', () => {
  let cp: ControlPlaneProc;
  let agent: AgentProc;
  let terminalId: string;
  let dataDir: string;
  let http: Server;
  let httpUrl: string;
  let tls: TlsTestServer;
  const pki = createPki('Diag');
  const otherPki = createPki('Other');

  beforeAll(async () => {
    http = createServer((req, res) => {
      res.writeHead(req.headers.authorization === 'Bearer diag-token-77' ? 200 : 401);
      res.end('ok');
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    httpUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    tls = await startTlsServer({
      certPem: chainPem(pki.server, pki.intermediate),
      keyPem: pki.server.keyPem,
    });
    cp = await startControlPlane();
    ({ terminalId, dataDir } = await createAndEnroll(cp, 'diag-site'));
    agent = await startAgent(cp, terminalId, dataDir);
  });

  afterAll(async () => {
    await agent?.stop();
    await cp?.stop();
    http?.close();
    await tls?.close();
  });

  async function account(body: Record<string, unknown>): Promise<string> {
    const res = await cp.api.call('POST', '/v1/accounts', { name: 'diag', terminalId, ...body });
    expect(res.status).toBe(201);
    return res.body.id as string;
  }

  it('tests a terminal with a round trip over its connection', async () => {
    const res = await cp.api.call('POST', `/v1/terminals/${terminalId}/test`);
    expect(res.status).toBe(200);
    expect(res.body.ok).toBe(true);
    expect(res.body.hops).toEqual([
      expect.objectContaining({ name: 'terminal', ok: true, hint: null }),
    ]);
    expect(typeof res.body.hops[0].ms).toBe('number');
  });

  it('passes every hop for a reachable host with good credentials', async () => {
    const id = await account({
      authType: 'bearer',
      host: httpUrl,
      secrets: { token: 'diag-token-77' },
    });
    const res = await cp.api.call('POST', `/v1/accounts/${id}/test`);
    expect(res.body.ok).toBe(true);
    expect(res.body.hops.map((h: { name: string }) => h.name)).toEqual([
      'terminal',
      'dns',
      'tcp',
      'tls',
      'request',
    ]);
    expect(res.body.hops.at(-1).detail).toBe('GET / answered 200');
  });

  it('fails the request hop with a hint when the credentials are refused', async () => {
    const id = await account({
      authType: 'bearer',
      host: httpUrl,
      secrets: { token: 'wrong-token-1' },
    });
    const res = await cp.api.call('POST', `/v1/accounts/${id}/test`);
    expect(res.body.ok).toBe(false);
    const request = res.body.hops.find((h: { name: string }) => h.name === 'request');
    expect(request).toMatchObject({ ok: false, detail: 'GET / answered 401' });
    expect(request.hint).toContain('credentials');
  });

  it('fails the tcp hop for a refused port and says what to check', async () => {
    const id = await account({ authType: 'none', host: 'http://127.0.0.1:1' });
    const res = await cp.api.call('POST', `/v1/accounts/${id}/test`);
    expect(res.body.ok).toBe(false);
    expect(res.body.hops.map((h: { name: string; ok: boolean }) => [h.name, h.ok])).toEqual([
      ['terminal', true],
      ['dns', true],
      ['tcp', false],
    ]);
    expect(res.body.hops[2].detail).toContain('ECONNREFUSED');
    expect(res.body.hops[2].hint).toContain('listens');
  });

  it('fails the tls hop for an untrusted certificate, and passes it with the right CA', async () => {
    const untrusted = await account({
      authType: 'none',
      host: tls.url,
      settings: { caPem: otherPki.root.certPem },
    });
    const bad = await cp.api.call('POST', `/v1/accounts/${untrusted}/test`);
    expect(bad.body.ok).toBe(false);
    const hop = bad.body.hops.find((h: { name: string }) => h.name === 'tls');
    expect(hop.ok).toBe(false);
    expect(hop.hint).toContain('caPem');

    const trusted = await account({
      authType: 'ca-certificate',
      host: tls.url,
      settings: { caPem: pki.root.certPem },
    });
    const good = await cp.api.call('POST', `/v1/accounts/${trusted}/test`);
    expect(good.body.ok).toBe(true);
    expect(good.body.hops.find((h: { name: string }) => h.name === 'tls').detail).toContain(
      'Diag Server',
    );
  });

  it('tests a direct account from the control plane itself', async () => {
    const res0 = await cp.api.call('POST', '/v1/accounts', {
      name: 'direct',
      authType: 'none',
      host: httpUrl,
    });
    const res = await cp.api.call('POST', `/v1/accounts/${res0.body.id}/test`);
    expect(res.body.hops.map((h: { name: string }) => h.name)).toEqual([
      'dns',
      'tcp',
      'tls',
      'request',
    ]);
    expect(res.body.hops.at(-1).detail).toBe('GET / answered 401');
  });

  it('returns recent, redacted log lines of the running terminal', async () => {
    await account({
      authType: 'basic',
      host: httpUrl,
      secrets: { username: 'u', password: 'canary-pass-9931' },
    });
    const res = await cp.api.call('GET', `/v1/terminals/${terminalId}/logs?level=info`);
    expect(res.status).toBe(200);
    expect(res.body.lines.length).toBeGreaterThan(0);
    expect(res.body.lines.some((l: { message: string }) => l.message === 'account stored')).toBe(
      true,
    );
    for (const line of res.body.lines)
      expect(Object.keys(line)).toEqual(expect.arrayContaining(['time', 'level', 'message']));
    expect(JSON.stringify(res.body)).not.toContain('canary-pass-9931');
    const bad = await cp.api.call('GET', `/v1/terminals/${terminalId}/logs?level=loud`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('VALIDATION_FAILED');
  });

  it('goes offline when the agent dies, with its accounts and queued jobs, and online when it returns', async () => {
    const id = await account({ authType: 'none', host: httpUrl });
    await agent.stop('SIGKILL');
    await waitFor('offline', async () =>
      (await cp.api.call('GET', `/v1/terminals/${terminalId}`)).body.status === 'offline'
        ? true
        : undefined,
    );
    expect((await cp.api.call('GET', `/v1/accounts/${id}`)).body.status).toBe('offline');
    const logs = await cp.api.call('GET', `/v1/terminals/${terminalId}/logs`);
    expect(logs.status).toBe(409);
    expect(logs.body.error.code).toBe('TERMINAL_OFFLINE');
    const test = await cp.api.call('POST', `/v1/terminals/${terminalId}/test`);
    expect(test.body).toMatchObject({ ok: false, hops: [{ name: 'terminal', ok: false }] });

    const job = await cp.api.call('POST', '/v1/jobs', {
      accountId: id,
      request: { method: 'GET', path: '/' },
      timeoutMs: 500,
    });
    const ended = await waitForJob(cp.api, job.body.id);
    expect(ended.state).toBe('timed_out');
    expect(ended.error.code).toBe('TIMEOUT_QUEUED');
    expect(ended.error.message).toContain('offline');

    agent = await startAgent(cp, terminalId, dataDir);
    const t = await cp.api.call('GET', `/v1/terminals/${terminalId}`);
    expect(t.body).toMatchObject({ status: 'online', version: '0.1.0', versionSupported: true });
    expect(t.body.hostname).toBeTruthy();
    expect(t.body.os).toBeTruthy();
    expect(typeof t.body.uptimeSeconds).toBe('number');
    expect((await cp.api.call('GET', `/v1/accounts/${id}`)).body.status).toBe('online');
  });
});
