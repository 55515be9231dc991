import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  createAndEnroll,
  startAgent,
  startControlPlane,
  waitForJob,
  type AgentProc,
  type ControlPlaneProc,
} from '../helpers/processes.js';

const BODY_BYTES = 30 * 1024 * 1024;

/** A deterministic body, produced in chunks so that the test never holds it whole. */
async function* bodyChunks(): AsyncGenerator<Uint8Array> {
  for (let sent = 0; sent < BODY_BYTES; sent += 1024 * 1024)
    yield Buffer.alloc(1024 * 1024, (sent / 1024 / 1024) % 251);
}

function expectedHash(): string {
  const h = createHash('sha256');
  for (let sent = 0; sent < BODY_BYTES; sent += 1024 * 1024)
    h.update(Buffer.alloc(1024 * 1024, (sent / 1024 / 1024) % 251));
  return h.digest('hex');
}

describe('request bodies uploaded with PUT /v1/jobs/:id/request-body', () => {
  let cp: ControlPlaneProc;
  let agent: AgentProc;
  let target: Server;
  let url: string;
  let bound: string;
  let direct: string;

  beforeAll(async () => {
    target = createServer((req, res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        hash.update(c);
        bytes += c.length;
      });
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            bytes,
            sha256: hash.digest('hex'),
            type: req.headers['content-type'] ?? null,
          }),
        );
      });
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
    cp = await startControlPlane();
    const { terminalId, dataDir } = await createAndEnroll(cp, 'uploads');
    agent = await startAgent(cp, terminalId, dataDir);
    bound = (
      await cp.api.call('POST', '/v1/accounts', {
        name: 'up',
        authType: 'none',
        host: url,
        terminalId,
      })
    ).body.id;
    direct = (
      await cp.api.call('POST', '/v1/accounts', { name: 'up-direct', authType: 'none', host: url })
    ).body.id;
  });

  afterAll(async () => {
    await agent?.stop();
    await cp?.stop();
    target?.close();
  });

  async function put(jobId: string, body: AsyncIterable<Uint8Array> | string) {
    return fetch(`${cp.url}/v1/jobs/${jobId}/request-body`, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${cp.adminKey}`,
        'content-type': 'application/octet-stream',
      },
      body: typeof body === 'string' ? body : body,
      duplex: 'half',
    });
  }

  it('streams a 30 MB body through the terminal to the target, byte for byte', async () => {
    const created = await cp.api.call('POST', '/v1/jobs', {
      accountId: bound,
      request: {
        method: 'POST',
        path: '/upload',
        headers: { 'content-type': 'application/x-tar' },
      },
      requestBodyUpload: true,
      timeoutMs: 60_000,
    });
    expect(created.status).toBe(202);
    expect((await cp.api.call('GET', `/v1/jobs/${created.body.id}`)).body.state).toBe('queued');
    const res = await put(created.body.id, bodyChunks());
    expect(res.status).toBe(204);
    const job = await waitForJob(cp.api, created.body.id);
    expect(job.state).toBe('succeeded');
    const answer = await cp.api.call('POST', '/v1/jobs?wait=true', {
      accountId: bound,
      request: { method: 'GET', path: '/' },
    });
    expect(answer.body.state).toBe('succeeded');
    const body = await fetch(`${cp.url}/v1/jobs/${created.body.id}/body`, {
      headers: { authorization: `Bearer ${cp.adminKey}` },
    });
    expect(await body.json()).toEqual({
      bytes: BODY_BYTES,
      sha256: expectedHash(),
      type: 'application/x-tar',
    });
  });

  it('streams a body to a direct job too', async () => {
    const created = await cp.api.call('POST', '/v1/jobs', {
      accountId: direct,
      request: { method: 'PUT', path: '/direct' },
      requestBodyUpload: true,
    });
    expect((await put(created.body.id, 'hello upload')).status).toBe(204);
    const job = await waitForJob(cp.api, created.body.id);
    expect(job.state).toBe('succeeded');
    const body = await fetch(`${cp.url}/v1/jobs/${created.body.id}/body`, {
      headers: { authorization: `Bearer ${cp.adminKey}` },
    });
    expect(await body.json()).toEqual({
      bytes: 12,
      sha256: createHash('sha256').update('hello upload').digest('hex'),
      type: null,
    });
  });

  it('refuses an upload for a job that takes its body inline, or twice, or with an inline body', async () => {
    const inline = await cp.api.call('POST', '/v1/jobs?wait=true', {
      accountId: bound,
      request: { method: 'GET', path: '/' },
    });
    const res = await put(inline.body.id, 'x');
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('CONFLICT');

    const both = await cp.api.call('POST', '/v1/jobs', {
      accountId: bound,
      request: { method: 'POST', path: '/', body: 'inline' },
      requestBodyUpload: true,
    });
    expect(both.status).toBe(400);
    expect(both.body.error).toMatchObject({
      code: 'VALIDATION_FAILED',
      field: 'requestBodyUpload',
    });

    const once = await cp.api.call('POST', '/v1/jobs', {
      accountId: bound,
      request: { method: 'POST', path: '/' },
      requestBodyUpload: true,
    });
    expect((await put(once.body.id, 'first')).status).toBe(204);
    await waitForJob(cp.api, once.body.id);
    const again = await put(once.body.id, 'second');
    expect(again.status).toBe(409);
  });

  it('ends a job whose body never comes as timed out in the queue', async () => {
    const created = await cp.api.call('POST', '/v1/jobs', {
      accountId: bound,
      request: { method: 'POST', path: '/' },
      requestBodyUpload: true,
      timeoutMs: 300,
    });
    const job = await waitForJob(cp.api, created.body.id);
    expect(job.state).toBe('timed_out');
    expect(job.error.code).toBe('TIMEOUT_QUEUED');
  });
});
