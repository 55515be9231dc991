/**
 * Hostile input through the HTTP API of a real control plane on loopback: what is refused at
 * the door, with which code and field, instead of being stored or failing later at run time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  cleanup,
  createAndEnroll,
  startControlPlane,
  type ApiAnswer,
  type ControlPlaneProc,
} from '../helpers/processes.js';

const EVIL_NAME = 'evil\u001b[2J\u001b[H';

function errorOf(answer: ApiAnswer): { status: number; code: string; field?: string } {
  const e = answer.body.error;
  return { status: answer.status, code: e.code, ...(e.field ? { field: e.field } : {}) };
}

describe('input refused by the API', () => {
  let cp: ControlPlaneProc;
  let terminalId: string;
  let accountId: string;

  beforeAll(async () => {
    cp = await startControlPlane();
    terminalId = (await cp.api.call('POST', '/v1/terminals', { name: 'site-a' })).body.id;
    const account = await cp.api.call('POST', '/v1/accounts', {
      name: 'plain',
      authType: 'none',
      host: 'http://127.0.0.1:9',
    });
    accountId = account.body.id;
  });
  afterAll(async () => {
    await cp.stop();
    cleanup(cp.dataDir);
  });

  describe('names with control characters', () => {
    it.each([
      ['ESC', EVIL_NAME],
      ['CR LF', 'a\r\nb'],
      ['NUL', 'a\u0000b'],
      ['DEL', 'a\u007fb'],
      ['a C1 character', 'a\u009bb'],
    ])('are refused for a new account (%s)', async (_what, name) => {
      const r = await cp.api.call('POST', '/v1/accounts', {
        name,
        authType: 'none',
        host: 'http://127.0.0.1:9',
      });

      expect(errorOf(r)).toEqual({ status: 400, code: 'VALIDATION_FAILED', field: 'name' });
    });

    it('are refused when an account is renamed', async () => {
      const r = await cp.api.call('PATCH', `/v1/accounts/${accountId}`, { name: EVIL_NAME });

      expect(errorOf(r)).toEqual({ status: 400, code: 'VALIDATION_FAILED', field: 'name' });
      expect((await cp.api.call('GET', `/v1/accounts/${accountId}`)).body.name).toBe('plain');
    });

    it('are refused for a new terminal and when a terminal is renamed', async () => {
      const created = await cp.api.call('POST', '/v1/terminals', { name: EVIL_NAME });
      const renamed = await cp.api.call('PATCH', `/v1/terminals/${terminalId}`, {
        name: 'a\nb',
      });

      expect(errorOf(created)).toEqual({ status: 400, code: 'VALIDATION_FAILED', field: 'name' });
      expect(errorOf(renamed)).toEqual({ status: 400, code: 'VALIDATION_FAILED', field: 'name' });
    });

    it('are refused in the name an agent gives when it enrolls', async () => {
      const key = { kty: 'EC', crv: 'P-256', x: 'x'.repeat(43), y: 'y'.repeat(43) };
      const r = await cp.api.withKey('').call('POST', '/v1/enroll', {
        token: 'enr_0123456789',
        name: EVIL_NAME,
        signingKey: key,
        encryptionKey: key,
      });

      expect(errorOf(r)).toEqual({ status: 400, code: 'VALIDATION_FAILED', field: 'name' });
    });

    it('leave other scripts and Latin-1 letters alone', async () => {
      const r = await cp.api.call('POST', '/v1/terminals', { name: 'Zürich ☃ 東京' });

      expect(r.status).toBe(201);
      expect(r.body.name).toBe('Zürich ☃ 東京');
    });
  });

  describe('hosts with whitespace or control characters', () => {
    it('are refused, not trimmed and stored', async () => {
      const created = await cp.api.call('POST', '/v1/accounts', {
        name: 'crlf',
        authType: 'none',
        host: 'http://127.0.0.1\r\n',
      });
      const patched = await cp.api.call('PATCH', `/v1/accounts/${accountId}`, {
        host: ' http://127.0.0.1:9',
      });

      expect(errorOf(created)).toEqual({ status: 400, code: 'INVALID_TARGET', field: 'host' });
      expect(errorOf(patched)).toEqual({ status: 400, code: 'INVALID_TARGET', field: 'host' });
    });
  });

  describe('jobs that could only fail at run time, or that echo credentials back', () => {
    it.each(['CONNECT', 'TRACE', 'track'])('refuse the method %s', async (method) => {
      const r = await cp.api.call('POST', '/v1/jobs', {
        accountId,
        request: { method, path: '/' },
      });

      expect(errorOf(r)).toEqual({
        status: 400,
        code: 'VALIDATION_FAILED',
        field: 'request.method',
      });
    });

    it('refuse a header value outside visible Latin-1', async () => {
      const r = await cp.api.call('POST', '/v1/jobs', {
        accountId,
        request: { method: 'GET', path: '/', headers: { 'x-note': 'é☃' } },
      });

      expect(errorOf(r)).toEqual({
        status: 400,
        code: 'INVALID_HEADER',
        field: 'request.headers.x-note',
      });
    });

    it.each(['Host', 'Content-Length', 'Transfer-Encoding', 'Connection', 'Upgrade', 'Proxy-X'])(
      'refuse %s among the secrets of a header account',
      async (name) => {
        const r = await cp.api.call('POST', '/v1/accounts', {
          name: 'headers',
          authType: 'header',
          host: 'http://127.0.0.1:9',
          secrets: { headers: { 'x-api-key': 'k-123456', [name]: 'v' } },
        });

        expect(errorOf(r)).toEqual({
          status: 400,
          code: 'INVALID_SECRET',
          field: `secrets.headers.${name}`,
        });
      },
    );
  });

  describe('an Idempotency-Key', () => {
    const job = (path: string, extra: Record<string, unknown> = {}) => ({
      accountId,
      request: { method: 'GET', path, headers: { a: '1', b: '2' } },
      ...extra,
    });
    const post = (body: unknown, key: string) =>
      cp.api.call('POST', '/v1/jobs', body, { 'idempotency-key': key });

    it('returns the same job for the same request, whatever the key order', async () => {
      const first = await post(job('/idem'), 'key-same');
      const again = await post(
        { request: { headers: { b: '2', a: '1' }, path: '/idem', method: 'get' }, accountId },
        'key-same',
      );

      expect(first.status).toBe(202);
      expect([again.status, again.body.id]).toEqual([202, first.body.id]);
    });

    it.each([
      ['another path', () => job('/other')],
      ['another timeout', () => job('/idem', { timeoutMs: 5000 })],
      ['a request body upload', () => job('/idem', { requestBodyUpload: true })],
      ['another account', () => ({ ...job('/idem'), accountId: 'acc_other' })],
    ])('is refused with 409 CONFLICT when sent again with %s', async (what, changed) => {
      const first = await post(job('/idem'), `key-${what}`);
      const again = await post(changed(), `key-${what}`);

      expect(first.status).toBe(202);
      expect(errorOf(again)).toEqual({
        status: 409,
        code: 'CONFLICT',
        field: 'Idempotency-Key',
      });
      expect(again.body.error.message).toBe(
        `the Idempotency-Key was used with a different request (job ${first.body.id}):` +
          ' use a new key for a new request',
      );
    });
  });

  describe('a revoked terminal', () => {
    let revokedId: string;
    let boundId: string;
    let agentDir: string;

    beforeAll(async () => {
      ({ terminalId: revokedId, dataDir: agentDir } = await createAndEnroll(cp, 'gone'));
      const bound = await cp.api.call('POST', '/v1/accounts', {
        name: 'bound-to-gone',
        authType: 'none',
        host: 'http://127.0.0.1:9',
        terminalId: revokedId,
      });
      boundId = bound.body.id;
      expect((await cp.api.call('DELETE', `/v1/terminals/${revokedId}`)).status).toBe(204);
    });
    afterAll(() => cleanup(agentDir));

    it('takes no job: 409 CONFLICT at creation rather than a timeout later', async () => {
      const r = await cp.api.call('POST', '/v1/jobs', {
        accountId: boundId,
        request: { method: 'GET', path: '/' },
      });

      expect(errorOf(r)).toEqual({ status: 409, code: 'CONFLICT', field: 'accountId' });
      expect(r.body.error.message).toBe(
        `terminal ${revokedId} was revoked: bind account ${boundId} to another terminal` +
          ' (PATCH /v1/accounts/:id with terminalId)',
      );
    });

    it('is named as revoked by the account test, not as an agent to start', async () => {
      const r = await cp.api.call('POST', `/v1/accounts/${boundId}/test`);

      expect(r.status).toBe(200);
      expect(r.body.ok).toBe(false);
      expect(r.body.hops).toHaveLength(1);
      expect(r.body.hops[0]).toMatchObject({
        name: 'terminal',
        ok: false,
        detail: `terminal ${revokedId} was revoked: it never connects again`,
      });
    });

    it('can no longer be renamed', async () => {
      const r = await cp.api.call('PATCH', `/v1/terminals/${revokedId}`, { name: 'renamed' });

      expect(errorOf(r)).toEqual({ status: 409, code: 'CONFLICT' });
      expect((await cp.api.call('GET', `/v1/terminals/${revokedId}`)).body.name).toBe('gone');
    });
  });

  describe('what the framework refuses before a route runs', () => {
    const longId = `job_${'x'.repeat(300)}`;

    it('answers an id longer than the router takes as 404 NOT_FOUND, in the API shape', async () => {
      const r = await cp.api.call('GET', `/v1/jobs/${longId}`);

      expect(r.status).toBe(404);
      expect(r.body).toEqual({
        error: { code: 'NOT_FOUND', message: 'nothing has this id: it is longer than any id' },
      });
    });

    it('asks for the API key before saying so', async () => {
      const r = await cp.api.withKey('').call('GET', `/v1/jobs/${longId}`);

      expect(r.status).toBe(401);
      expect(r.body).toEqual({
        error: { code: 'UNAUTHENTICATED', message: 'missing Authorization: Bearer <API key>' },
      });
    });

    it('lets ids of up to 200 characters reach the route', async () => {
      const id = `job_${'y'.repeat(190)}`;
      const r = await cp.api.call('GET', `/v1/jobs/${id}`);

      expect(errorOf(r)).toEqual({ status: 404, code: 'NOT_FOUND' });
      expect(r.body.error.message).toBe(`job ${id} not found`);
    });
  });

  describe('an empty body sent as JSON', () => {
    const json = { 'content-type': 'application/json' };

    it('is no body for DELETE', async () => {
      const id = (await cp.api.call('POST', '/v1/terminals', { name: 'to-revoke' })).body.id;
      const r = await cp.api.call('DELETE', `/v1/terminals/${id}`, undefined, json);

      expect(r.status).toBe(204);
    });

    it('is no body for /cancel and /test', async () => {
      const job = await cp.api.call('POST', '/v1/jobs', {
        accountId,
        request: { method: 'GET', path: '/empty-body' },
      });
      const cancel = await cp.api.call('POST', `/v1/jobs/${job.body.id}/cancel`, undefined, json);
      const test = await cp.api.call('POST', `/v1/accounts/${accountId}/test`, undefined, json);

      expect(cancel.body?.error?.code).not.toBe('INVALID_JSON');
      expect([200, 202, 409]).toContain(cancel.status);
      expect(test.status).toBe(200);
    });

    it('names the missing field where a body is needed; broken JSON is still INVALID_JSON', async () => {
      const r = await cp.api.call('POST', '/v1/terminals', undefined, json);
      const bad = await fetch(`${cp.url}/v1/terminals`, {
        method: 'POST',
        headers: { authorization: `Bearer ${cp.adminKey}`, ...json },
        body: '{"name":',
      });

      expect(errorOf(r)).toEqual({ status: 400, code: 'VALIDATION_FAILED', field: 'name' });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as any).error.code).toBe('INVALID_JSON');
    });
  });

  describe('list cursors', () => {
    it.each(['/v1/jobs', '/v1/terminals', '/v1/accounts', '/v1/audit'])(
      'are refused on %s when they name nothing',
      async (list) => {
        const r = await cp.api.call('GET', `${list}?cursor=garbage`);

        expect(errorOf(r)).toEqual({ status: 400, code: 'VALIDATION_FAILED', field: 'cursor' });
      },
    );

    it.each(['/v1/terminals', '/v1/accounts'])('still page through %s', async (list) => {
      const first = await cp.api.call('GET', `${list}?limit=1`);
      const next = await cp.api.call('GET', `${list}?limit=1&cursor=${first.body.nextCursor}`);

      expect(next.status).toBe(200);
      expect(next.body.items).toHaveLength(1);
      expect(next.body.items[0].id).not.toBe(first.body.items[0].id);
    });
  });
});

describe('an address that sent many wrong API keys', () => {
  let cp: ControlPlaneProc;

  beforeAll(async () => {
    cp = await startControlPlane();
    const wrong = cp.api.withKey(`opk_${'0'.repeat(43)}`);
    for (let i = 0; i < 30; i++) {
      expect((await wrong.call('GET', '/v1/terminals')).status).toBe(401);
    }
  });
  afterAll(async () => {
    await cp.stop();
    cleanup(cp.dataDir);
  });

  it('is refused further wrong keys with 429 and Retry-After', async () => {
    const r = await cp.api.withKey('wrong-key').call('GET', '/v1/terminals');

    expect(errorOf(r)).toEqual({ status: 429, code: 'TOO_MANY_FAILED_ATTEMPTS' });
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(r.headers.get('retry-after'))).toBeLessThanOrEqual(60);
  });

  it('still lets a valid key through', async () => {
    const r = await cp.api.call('GET', '/v1/terminals');

    expect(r.status).toBe(200);
  });
});
