import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createTestExecutor, testAccount } from '../helpers/executor-harness.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

describe('the executor with basic, bearer and header auth', () => {
  let server: Server;
  let base: string;
  const seen: Seen[] = [];
  const harness = createTestExecutor();

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({
          method: req.method!,
          url: req.url!,
          headers: req.headers,
          body: Buffer.concat(chunks).toString(),
        });
        res.setHeader('content-type', 'application/json');
        res.setHeader('set-cookie', 'a=1');
        res.setHeader('x-multi', ['1', '2']);
        res.end(JSON.stringify({ ok: true }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await harness.close();
    server.close();
  });

  it('sends Basic credentials encoded as UTF-8', async () => {
    const account = testAccount(
      'basic',
      `${base}/api`,
      {},
      { username: 'zoë', password: 'p:ss wörd' },
    );
    const answer = await harness.run(account, {
      method: 'GET',
      path: '/items',
      query: { q: 'a b' },
    });
    expect(answer.status).toBe(200);
    expect(answer.headers['set-cookie']).toEqual(['a=1']);
    expect(answer.headers['x-multi']).toEqual(['1', '2']);
    const last = seen.at(-1)!;
    expect(last.url).toBe('/api/items?q=a%20b');
    expect(last.headers.authorization).toBe(
      `Basic ${Buffer.from('zoë:p:ss wörd', 'utf8').toString('base64')}`,
    );
  });

  it('sends a bearer token and custom headers, and a JSON body with its content type', async () => {
    await harness.run(testAccount('bearer', base, {}, { token: 'tok123' }), {
      method: 'post',
      path: '/x',
      body: { a: 1 },
    });
    let last = seen.at(-1)!;
    expect(last.method).toBe('POST');
    expect(last.headers.authorization).toBe('Bearer tok123');
    expect(last.headers['content-type']).toBe('application/json');
    expect(last.body).toBe('{"a":1}');

    await harness.run(testAccount('header', base, {}, { headers: { 'X-Api-Key': 'k1' } }), {
      path: '/y',
    });
    last = seen.at(-1)!;
    expect(last.headers['x-api-key']).toBe('k1');
  });

  it('refuses framing headers from the job', async () => {
    const account = testAccount('none', base);
    await expect(harness.run(account, { headers: { Host: 'evil' } })).rejects.toMatchObject({
      code: 'INVALID_HEADER',
    });
    await expect(harness.run(account, { headers: { 'X-A': 'a\r\nb' } })).rejects.toMatchObject({
      code: 'INVALID_HEADER',
    });
  });

  it('reports a refused connection with its code', async () => {
    const account = testAccount('none', 'http://127.0.0.1:1');
    await expect(harness.run(account, {})).rejects.toMatchObject({ code: 'CONNECTION_REFUSED' });
  });
});
