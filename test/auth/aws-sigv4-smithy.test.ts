/**
 * Agreement with AWS's own signer (@smithy/signature-v4) on a few hundred generated requests
 * with awkward paths, queries and headers: once at the signer, once over real loopback HTTP.
 */
import aws4 from 'aws4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ResolvedAccount } from '../../shared/accounts.js';
import { awsAuth } from '../../shared/auth/aws-sigv4.js';
import type { AuthContext, OutgoingRequest } from '../../shared/auth/types.js';
import {
  buildTargetUrl,
  parseAccountBase,
  type QueryValue,
} from '../../shared/executor/target-url.js';
import { createLogger } from '../../shared/logger.js';
import { startSigV4Server, verifySigV4, type SigV4Server } from '../fixtures/sigv4-server.js';
import { createTestExecutor, testAccount } from '../helpers/executor-harness.js';

const KEYS = new Map([['AKIDGENERATED', 'gen/secret+key=']]);
const NOW = Date.UTC(2024, 4, 6, 7, 8, 9);

/** mulberry32: a small seeded generator, so that every run makes the same requests. */
function seeded(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const count = (max: number) => Math.floor(next() * (max + 1));
  return { next, pick, count };
}

const SEGMENTS = [
  'a',
  'Key',
  'with space',
  'ünï',
  '日本',
  '%2F',
  'a%2Fb',
  '+',
  'a+b',
  '~',
  '*',
  "it's",
  '(x)',
  '!',
  '$',
  '&',
  '=',
  ',',
  ';',
  ':',
  '@',
  '%20',
  '%41',
  '%7e',
  'a%2Bb',
  '[1]',
  '|',
  '^',
  '{}',
  '"q"',
  '<>',
  '`',
  'é%C3%A9',
  '-._',
  '',
] as const;
const QUERY_KEYS = ['a', 'b', 'A', 'a b', 'ключ', 'x+y', 'k=', '*', "'", '~', 'x-amz-meta'];
const QUERY_VALUES = ['', '1', 'a b', '+', '%2B', '/', '?', '=', '&', 'ü', '!*()', "'", '~', 'a,b'];
const RAW_QUERIES = ['x=1&x=0', 'plus=a+b', 'enc=%2F%3D', 'empty=&empty', "bang=!*'()", 'sp=a%20b'];
const HEADER_NAMES = [
  'x-custom',
  'x-amz-meta-note',
  'X-Mixed-Case',
  'range',
  'content-md5',
  'accept',
];
const HEADER_VALUES = [
  'plain',
  'two  spaces',
  'tab\tinside',
  ' padded ',
  'a,b, c',
  'bytes=0-9',
  'ö',
];
const SERVICES = ['s3', 's3', 'execute-api', 'sqs', 'es'];
const METHODS = ['GET', 'PUT', 'POST', 'DELETE', 'HEAD'];

interface Generated {
  service: string;
  sessionToken: string | undefined;
  request: {
    method: string;
    path: string;
    query?: Record<string, QueryValue>;
    headers?: Record<string, string>;
    bodyBase64?: string;
  };
}

function generate(count: number, seed: number): Generated[] {
  const rnd = seeded(seed);
  const out: Generated[] = [];
  for (let i = 0; i < count; i++) {
    const segments = Array.from({ length: 1 + rnd.count(3) }, () => rnd.pick(SEGMENTS));
    let path = segments.join(rnd.next() < 0.2 ? '//' : '/');
    if (rnd.next() < 0.2) path += '/';
    if (rnd.next() < 0.3) path += `?${rnd.pick(RAW_QUERIES)}`;
    const query: Record<string, QueryValue> = {};
    for (let q = rnd.count(3); q > 0; q--) {
      const key = rnd.pick(QUERY_KEYS);
      query[key] =
        rnd.next() < 0.3
          ? [rnd.pick(QUERY_VALUES), rnd.pick(QUERY_VALUES)]
          : rnd.pick(QUERY_VALUES);
    }
    const headers: Record<string, string> = {};
    for (let h = rnd.count(3); h > 0; h--)
      headers[rnd.pick(HEADER_NAMES)] = rnd.pick(HEADER_VALUES);
    const method = rnd.pick(METHODS);
    const withBody = method === 'PUT' || method === 'POST';
    out.push({
      service: rnd.pick(SERVICES),
      sessionToken: rnd.next() < 0.3 ? 'FQoGZXIvYXdz//token+/=' : undefined,
      request: {
        method,
        path,
        query,
        headers,
        ...(withBody ? { bodyBase64: Buffer.from(`body ${i} ü`).toString('base64') } : {}),
      },
    });
  }
  return out;
}

function account(host: string, g: Generated): ResolvedAccount {
  const secrets: Record<string, unknown> = {
    accessKeyId: 'AKIDGENERATED',
    secretAccessKey: KEYS.get('AKIDGENERATED'),
  };
  if (g.sessionToken) secrets.sessionToken = g.sessionToken;
  return testAccount('aws', host, { service: g.service, region: 'eu-west-3' }, secrets);
}

const cases = generate(300, 20240506);

describe('SigV4 signatures compared with @smithy/signature-v4', () => {
  it('agree exactly at the signer on 300 generated requests', async () => {
    const logger = createLogger({ level: 'error' });
    const failures: string[] = [];
    for (const g of cases) {
      const acct = account('https://bucket.example.test:8443/base', g);
      const url = buildTargetUrl(
        parseAccountBase(acct.host, null),
        g.request.path,
        g.request.query,
      );
      const body = g.request.bodyBase64 ? Buffer.from(g.request.bodyBase64, 'base64') : undefined;
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(g.request.headers ?? {})) headers[k.toLowerCase()] = v;
      const req: OutgoingRequest = {
        method: g.request.method,
        url,
        headers,
        body,
        bodyStreams: false,
      };
      const ctx = { account: acct, logger, now: () => NOW } as unknown as AuthContext;
      await awsAuth.apply(req, ctx);
      // What a server would read: values trimmed of surrounding whitespace (RFC 9110 5.5).
      const wireHeaders = Object.fromEntries(
        Object.entries(req.headers).map(([k, v]) => [k, v.trim()]),
      );
      const target = `${url.pathname}${url.search}`;
      const verdict = await verifySigV4(
        { method: req.method, target, headers: wireHeaders, body: body ?? Buffer.alloc(0) },
        KEYS,
      );
      if (!verdict.ok) failures.push(`${g.service} ${req.method} ${target}: ${verdict.reason}`);
    }
    expect(failures).toEqual([]);
  });

  it('cover the awkward cases they are meant to', () => {
    const paths = cases.map((g) => g.request.path);
    for (const piece of ['%2F', '+', 'ü', ' ', '//', '~', '*', '?x=1&x=0']) {
      expect(paths.filter((p) => p.includes(piece)).length, piece).toBeGreaterThan(5);
    }
    expect(cases.filter((g) => g.service === 's3').length).toBeGreaterThan(60);
    expect(cases.filter((g) => g.sessionToken).length).toBeGreaterThan(30);
  });

  it('would not all agree with aws4 used alone, which is why the canonical URI and query are ours', async () => {
    let disagreements = 0;
    for (const g of cases) {
      const url = buildTargetUrl(
        parseAccountBase('https://h.example.test/', null),
        g.request.path,
        g.request.query,
      );
      const headers: Record<string, string> = { 'x-amz-date': '20240506T070809Z' };
      if (g.service === 's3') headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      const target = `${url.pathname}${url.search}`;
      const signed = aws4.sign(
        {
          host: url.host,
          method: 'GET',
          path: target,
          headers,
          service: g.service,
          region: 'eu-west-3',
        },
        { accessKeyId: 'AKIDGENERATED', secretAccessKey: KEYS.get('AKIDGENERATED')! },
      );
      const wireHeaders: Record<string, string> = { host: url.host };
      for (const [k, v] of Object.entries(signed.headers ?? {}))
        wireHeaders[k.toLowerCase()] = String(v);
      const verdict = await verifySigV4(
        { method: 'GET', target, headers: wireHeaders, body: Buffer.alloc(0) },
        KEYS,
      ).catch(() => ({ ok: false }));
      if (!verdict.ok) disagreements++;
    }
    expect(disagreements).toBeGreaterThan(0);
  });

  describe('over real HTTP through the executor', () => {
    let server: SigV4Server;
    const harness = createTestExecutor({ now: () => NOW });

    beforeAll(async () => {
      server = await startSigV4Server(KEYS);
    });

    afterAll(async () => {
      await harness.close();
      await server.close();
    });

    it('are accepted by a smithy-verifying server for the same 300 requests', async () => {
      const failures: string[] = [];
      for (const g of cases) {
        const answer = await harness.run(account(`${server.url}/base`, g), g.request);
        if (answer.status !== 200) {
          const seen = server.seen.at(-1);
          failures.push(`${g.service} ${g.request.method} ${seen?.wire.target}: ${answer.status}`);
        }
      }
      expect(failures).toEqual([]);
      expect(server.seen.length).toBe(cases.length);
    });
  });
});
