import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ResolvedAccount } from '../../shared/accounts.js';
import { awsAuth } from '../../shared/auth/aws-sigv4.js';
import { checkAccountFields } from '../../shared/auth/registry.js';
import type { AuthContext, OutgoingRequest } from '../../shared/auth/types.js';
import { jobRequestSchema } from '../../shared/jobs.js';
import { startSigV4Server, type SigV4Server } from '../fixtures/sigv4-server.js';
import { createTestExecutor, testAccount } from '../helpers/executor-harness.js';

const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const keys = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: SECRET };
const NOW = Date.UTC(2015, 7, 30, 12, 36, 0);

describe('aws accounts checked when saved', () => {
  const check = (settings: Record<string, unknown>, secrets: Record<string, unknown>) =>
    checkAccountFields('aws', settings, secrets, true);
  const settings = { service: 's3', region: 'us-east-1' };

  it('accepts a service, a region and keys, with or without a session token', () => {
    expect(check(settings, keys).warnings).toEqual([]);
    expect(check(settings, { ...keys, sessionToken: 'tok' }).secrets.sessionToken).toBe('tok');
  });

  it('requires service and region, in the shape of a credential scope', () => {
    expect(() => check({ region: 'us-east-1' }, keys)).toThrow(
      expect.objectContaining({ code: 'INVALID_SETTING', details: { field: 'settings.service' } }),
    );
    expect(() => check({ service: 's3', region: 'US East/1' }, keys)).toThrow(
      expect.objectContaining({ code: 'INVALID_SETTING', details: { field: 'settings.region' } }),
    );
  });

  it('requires both keys and refuses line breaks without repeating the secret', () => {
    expect(() => check(settings, { accessKeyId: 'AKID' })).toThrow(
      expect.objectContaining({
        code: 'INVALID_SECRET',
        details: { field: 'secrets.secretAccessKey' },
      }),
    );
    let caught: unknown;
    try {
      check(settings, { ...keys, sessionToken: 'hunter2\nx' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({
      code: 'INVALID_SECRET',
      details: { field: 'secrets.sessionToken' },
    });
    expect((caught as Error).message).not.toContain('hunter2');
  });
});

describe('aws signing of the host', () => {
  const sign = async (host: string) => {
    const account = testAccount('aws', host, { service: 'execute-api', region: 'eu-west-1' }, keys);
    const req: OutgoingRequest = {
      method: 'GET',
      url: new URL(`${host}/x`),
      headers: {},
      body: undefined,
      bodyStreams: false,
    };
    await awsAuth.apply(req, { account, now: () => NOW } as unknown as AuthContext);
    return req.headers;
  };

  it('signs host:port only for a port that is not the default one', async () => {
    expect((await sign('https://api.example.test:443')).host).toBe('api.example.test');
    expect((await sign('http://api.example.test:80')).host).toBe('api.example.test');
    expect((await sign('https://api.example.test:8443')).host).toBe('api.example.test:8443');
    expect((await sign('https://api.example.test')).authorization).toContain(
      'SignedHeaders=host;x-amz-date,',
    );
  });
});

describe('aws requests through the executor to a server that verifies with @smithy/signature-v4', () => {
  let server: SigV4Server;
  const harness = createTestExecutor({ now: () => NOW });

  beforeAll(async () => {
    server = await startSigV4Server(new Map([[keys.accessKeyId, SECRET]]));
  });

  afterAll(async () => {
    await harness.close();
    await server.close();
  });

  const account = (service: string, secrets: Record<string, unknown> = {}): ResolvedAccount =>
    testAccount(
      'aws',
      `${server.url}/svc`,
      { service, region: 'us-east-1' },
      { ...keys, ...secrets },
    );

  it('is accepted for s3 with the payload hash sent and signed', async () => {
    const answer = await harness.run(account('s3'), {
      method: 'PUT',
      path: '/bucket/my key+1/ü.txt',
      headers: { 'content-type': 'text/plain', 'x-amz-meta-a': 'b  c' },
      body: 'hello',
    });
    expect(answer.status, answer.text).toBe(200);
    const { wire } = server.seen.at(-1)!;
    expect(wire.headers['x-amz-content-sha256']).toMatch(/^[0-9a-f]{64}$/);
    expect(wire.headers.authorization).toContain('x-amz-content-sha256');
    expect(wire.headers.host).toBe(new URL(server.url).host);
  });

  it('is accepted for another service with a session token, which is sent and signed', async () => {
    const answer = await harness.run(account('execute-api', { sessionToken: 'session/tok+en=' }), {
      method: 'POST',
      path: '/a%2Fb//c?b=2&a=1&a=0',
      query: { 'x y': 'p+q' },
      body: { hello: 'world' },
    });
    expect(answer.status, answer.text).toBe(200);
    const { wire } = server.seen.at(-1)!;
    expect(wire.headers['x-amz-security-token']).toBe('session/tok+en=');
    expect(wire.headers.authorization).toMatch(/SignedHeaders=[^,]*x-amz-security-token/);
    expect(wire.headers['x-amz-content-sha256']).toBeUndefined();
  });

  it('is refused with 403 when the secret key is wrong', async () => {
    const answer = await harness.run(account('s3', { secretAccessKey: 'not-the-secret' }), {
      path: '/bucket/k',
    });
    expect(answer.status).toBe(403);
  });

  it('sends a streamed body to s3 as UNSIGNED-PAYLOAD', async () => {
    const status = await runStreamed(account('s3'), '/bucket/streamed');
    expect(status).toBe(200);
    const { wire } = server.seen.at(-1)!;
    expect(wire.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    expect(wire.body.toString()).toBe('chunk-1 chunk-2');
  });

  it('refuses a streamed body for other services before sending anything', async () => {
    const before = server.seen.length;
    await expect(runStreamed(account('sqs'), '/q')).rejects.toMatchObject({
      code: 'AUTH_FLOW_FAILED',
    });
    expect(server.seen.length).toBe(before);
  });

  async function runStreamed(acct: ResolvedAccount, path: string): Promise<number> {
    async function* chunks() {
      yield Buffer.from('chunk-1 ');
      yield Buffer.from('chunk-2');
    }
    let status = 0;
    await harness.executor.execute(
      {
        account: acct,
        request: jobRequestSchema.parse({ method: 'PUT', path }),
        streamedBody: chunks(),
        signal: new AbortController().signal,
      },
      {
        head: async (s) => {
          status = s;
        },
        chunk: async () => undefined,
      },
    );
    return status;
  }
});
