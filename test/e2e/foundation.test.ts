import { createHash } from 'node:crypto';
import path from 'node:path';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  agentCommand,
  createAndEnroll,
  startAgent,
  startControlPlane,
  waitForJob,
  type AgentProc,
  type ControlPlaneProc,
} from '../helpers/processes.js';

const BIG_BYTES = 50 * 1024 * 1024;

describe('a Basic-auth account bound to a freshly enrolled terminal', () => {
  let cp: ControlPlaneProc;
  let agent: AgentProc;
  let target: Server;
  let targetUrl: string;
  let accountId: string;
  let terminalId: string;
  const seen: Array<{ method: string; url: string; authorization?: string; body: string }> = [];

  beforeAll(async () => {
    target = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({
          method: req.method!,
          url: req.url!,
          authorization: req.headers.authorization,
          body: Buffer.concat(chunks).toString(),
        });
        if (
          req.headers.authorization !== `Basic ${Buffer.from('demo:s3cret').toString('base64')}`
        ) {
          res.writeHead(401, { 'www-authenticate': 'Basic' });
          res.end('unauthorized');
          return;
        }
        if (req.url === '/echo') {
          // An echo endpoint: it quotes back the credentials it was sent.
          res.writeHead(200, {
            'content-type': 'application/json',
            'x-echo-authorization': req.headers.authorization,
          });
          res.end(
            JSON.stringify({
              authorization: req.headers.authorization,
              note: 'password is s3cret',
            }),
          );
          return;
        }
        if (req.url === '/big') {
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          let sent = 0;
          const pump = () => {
            while (sent < BIG_BYTES) {
              const n = Math.min(1024 * 1024, BIG_BYTES - sent);
              const chunk = Buffer.alloc(n, sent % 251);
              sent += n;
              if (!res.write(chunk)) return void res.once('drain', pump);
            }
            res.end();
          };
          pump();
          return;
        }
        res.writeHead(req.url === '/missing' ? 404 : 200, {
          'content-type': 'application/json',
          'x-request-path': req.url!,
          'set-cookie': ['a=1', 'b=2'],
        });
        res.end(
          JSON.stringify({
            method: req.method,
            url: req.url,
            body: Buffer.concat(chunks).toString(),
          }),
        );
      });
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    targetUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
    cp = await startControlPlane();
    const enrolled = await createAndEnroll(cp, 'site-a');
    terminalId = enrolled.terminalId;
    agent = await startAgent(cp, terminalId, enrolled.dataDir);
    const account = await cp.api.call('POST', '/v1/accounts', {
      name: 'internal api',
      authType: 'basic',
      host: targetUrl,
      terminalId,
      secrets: { username: 'demo', password: 's3cret' },
    });
    expect(account.status).toBe(201);
    accountId = account.body.id;
  });

  afterAll(async () => {
    await agent?.stop();
    await cp?.stop();
    target?.close();
  });

  it('shows the account with its secret field names and never their values', async () => {
    const a = await cp.api.call('GET', `/v1/accounts/${accountId}`);
    expect(a.body.secretFields).toEqual(['password', 'username']);
    expect(a.body.status).toBe('online');
    expect(JSON.stringify(a.body)).not.toContain('s3cret');
  });

  it("returns the target's exact answer to POST /v1/jobs?wait=true", async () => {
    const res = await cp.api.call('POST', '/v1/jobs?wait=true', {
      accountId,
      request: {
        method: 'POST',
        path: '/orders',
        query: { q: 'a b', n: [1, 2] },
        body: { item: 'x' },
      },
    });
    expect(res.status).toBe(200);
    expect(res.body.state).toBe('succeeded');
    expect(res.body.response.status).toBe(200);
    expect(res.body.response.headers['x-request-path']).toBe('/orders?q=a%20b&n=1&n=2');
    expect(res.body.response.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(JSON.parse(res.body.response.body)).toEqual({
      method: 'POST',
      url: '/orders?q=a%20b&n=1&n=2',
      body: '{"item":"x"}',
    });
    expect(seen.at(-1)!.authorization).toBe(
      `Basic ${Buffer.from('demo:s3cret').toString('base64')}`,
    );
  });

  it('reports a target 404 as a succeeded job with status 404', async () => {
    const res = await cp.api.call('POST', '/v1/jobs?wait=true', {
      accountId,
      request: { method: 'GET', path: '/missing' },
    });
    expect(res.body.state).toBe('succeeded');
    expect(res.body.response.status).toBe(404);
  });

  it('streams a 50 MB body intact through GET /v1/jobs/:id/body', async () => {
    const created = await cp.api.call('POST', '/v1/jobs', {
      accountId,
      request: { method: 'GET', path: '/big' },
    });
    expect(created.status).toBe(202);
    expect(created.body.state).toBe('queued');
    const res = await fetch(`${cp.url}/v1/jobs/${created.body.id}/body`, {
      headers: { authorization: `Bearer ${cp.adminKey}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      bytes += chunk.length;
    }
    const expected = createHash('sha256');
    for (let sent = 0; sent < BIG_BYTES; sent += 1024 * 1024)
      expected.update(Buffer.alloc(1024 * 1024, sent % 251));
    expect(bytes).toBe(BIG_BYTES);
    expect(hash.digest('hex')).toBe(expected.digest('hex'));
    const job = await waitForJob(cp.api, created.body.id);
    expect(job.state).toBe('succeeded');
    expect(job.bodyBytes).toBe(BIG_BYTES);
  });

  it('shows the terminal online with its details, and the agent status connected', async () => {
    const t = await cp.api.call('GET', `/v1/terminals/${terminalId}`);
    expect(t.body.status).toBe('online');
    expect(t.body.version).toBe('0.1.0');
    expect(t.body.encryptionKey.kty).toBe('EC');
    const s = agentCommand(['status', '--json', '--data-dir', agent.dataDir]);
    expect(s.code).toBe(0);
    const status = JSON.parse(s.stdout);
    expect(status).toMatchObject({
      enrolled: true,
      terminalId,
      connected: true,
      controlPlaneUrl: cp.url,
    });
    expect(status.accounts).toEqual([
      expect.objectContaining({
        id: accountId,
        name: 'internal api',
        authType: 'basic',
        secretFields: ['password', 'username'],
      }),
    ]);
    expect(status.jobs.succeeded).toBeGreaterThanOrEqual(3);
  });

  it('masks the credentials a target echoes back, in headers and body, keeping the lengths', async () => {
    const basic = `Basic ${Buffer.from('demo:s3cret').toString('base64')}`;
    const res = await cp.api.call('POST', '/v1/jobs?wait=true', {
      accountId,
      request: { method: 'GET', path: '/echo' },
    });
    expect(res.body.state).toBe('succeeded');
    expect(res.body.response.headers['x-echo-authorization']).toBe('*'.repeat(basic.length));
    expect(JSON.parse(res.body.response.body)).toEqual({
      authorization: '*'.repeat(basic.length),
      note: 'password is ******',
    });
    expect(JSON.stringify(res.body)).not.toContain(Buffer.from('demo:s3cret').toString('base64'));
  });

  it('answers 410 BODY_EXPIRED for a body deleted after the retention period', async () => {
    const res = await cp.api.call('POST', '/v1/jobs?wait=true', {
      accountId,
      request: { method: 'GET', path: '/x' },
    });
    expect(res.body.bodyBytes).toBeGreaterThan(0);
    // What the retention sweep does to a small body kept in the job's row.
    const db = new Database(path.join(cp.dataDir, 'control-plane.db'));
    db.prepare('UPDATE jobs SET body_inline = NULL WHERE id = ?').run(res.body.id);
    db.close();
    const body = await cp.api.call('GET', `/v1/jobs/${res.body.id}/body`);
    expect(body.status).toBe(410);
    expect(body.body.error.code).toBe('BODY_EXPIRED');
  });
});
