import { generateKeyPairSync } from 'node:crypto';

import { afterEach, describe, expect, it } from 'vitest';

import { checkAccountFields } from '../../shared/auth/registry.js';
import { createTestExecutor, testAccount } from '../helpers/executor-harness.js';
import { JWT_BEARER_GRANT, startOAuthServer, type OAuthServer } from '../fixtures/oauth2-server.js';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const RSA_PEM = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
const EC_PEM = ec.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
const CLIENT = { id: 'svc-jwt', grants: [JWT_BEARER_GRANT] };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A clock shared by the executor and the fixture's assertion checks. */
function frozenClock() {
  let now = Date.now();
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('oauth2-jwt', () => {
  let server: OAuthServer | undefined;
  let harness: ReturnType<typeof createTestExecutor> | undefined;

  afterEach(async () => {
    await harness?.close();
    await server?.close();
    server = undefined;
  });

  async function start(clock: ReturnType<typeof frozenClock>, algorithm = 'RS256', keyId?: string) {
    const publicKey = algorithm === 'ES256' ? ec.publicKey : rsa.publicKey;
    server = await startOAuthServer({
      clients: [CLIENT],
      jwtBearer: {
        publicKey,
        algorithm,
        issuer: 'svc-jwt',
        audience: 'https://idp.example.test/token',
        lifetimeSeconds: 3600,
        now: clock.now,
        ...(keyId ? { keyId } : {}),
      },
    });
    harness = createTestExecutor({ now: clock.now });
    return server;
  }

  const claims = {
    iss: 'svc-jwt',
    aud: 'https://idp.example.test/token',
    scope: 'read',
    sub: 'user-1',
  };

  it('signs the claims with iat 30 s back and exp from expiresInSeconds, and exchanges the JWT as a form', async () => {
    const clock = frozenClock();
    const srv = await start(clock, 'RS256', 'k1');
    const account = testAccount(
      'oauth2-jwt',
      srv.base,
      { tokenUrl: srv.tokenUrl, claims, keyId: 'k1' },
      { privateKeyPem: RSA_PEM },
    );
    const answer = await harness!.run(account, { path: '/data' });

    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toEqual({ ok: true, client: 'svc-jwt', user: 'user-1' });
    const call = srv.tokenCalls[0]!;
    expect(call.contentType).toBe('application/x-www-form-urlencoded');
    const jwt = call.params.assertion!;
    expect(call.body).toBe(
      `grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=${jwt}`,
    );
    const iat = Math.floor(clock.now() / 1000) - 30;
    expect(srv.assertions).toHaveLength(1);
    expect(srv.assertions[0]!.header).toEqual({ alg: 'RS256', typ: 'JWT', kid: 'k1' });
    expect(srv.assertions[0]!.payload).toEqual({
      ...claims,
      jti: expect.stringMatching(UUID),
      iat,
      exp: iat + 3600,
    });
    expect(srv.resourceCalls.map((c) => [c.url, c.authorization])).toEqual([
      ['/data', 'Bearer at-1'],
    ]);
  });

  it('caches the token until it is due, then signs a new JWT', async () => {
    const clock = frozenClock();
    const srv = await start(clock);
    const account = testAccount(
      'oauth2-jwt',
      srv.base,
      { tokenUrl: srv.tokenUrl, claims },
      { privateKeyPem: RSA_PEM },
    );

    await harness!.run(account, { path: '/a' });
    clock.advance(3_539_000);
    await harness!.run(account, { path: '/b' });
    clock.advance(1_000);
    await harness!.run(account, { path: '/c' });

    expect(srv.tokenCalls).toHaveLength(2);
    expect(srv.assertions[1]!.payload.iat).toBe(srv.assertions[0]!.payload.iat! + 3540);
    expect(srv.assertions[1]!.payload.jti).not.toBe(srv.assertions[0]!.payload.jti);
    expect(srv.resourceCalls.map((c) => c.authorization)).toEqual([
      'Bearer at-1',
      'Bearer at-1',
      'Bearer at-2',
    ]);
  });

  it('gets a fresh token once after a 401', async () => {
    const clock = frozenClock();
    const srv = await start(clock);
    const account = testAccount(
      'oauth2-jwt',
      srv.base,
      { tokenUrl: srv.tokenUrl, claims },
      { privateKeyPem: RSA_PEM },
    );

    await harness!.run(account, { path: '/a' });
    srv.revokeAccessToken('at-1');
    const answer = await harness!.run(account, { path: '/b' });

    expect(answer.status).toBe(200);
    expect(srv.tokenCalls).toHaveLength(2);
    expect(srv.resourceCalls.map((c) => [c.url, c.authorization, c.status])).toEqual([
      ['/a', 'Bearer at-1', 200],
      ['/b', 'Bearer at-1', 401],
      ['/b', 'Bearer at-2', 200],
    ]);
  });

  it('signs ES256 and sends custom bodyParams as JSON', async () => {
    const clock = frozenClock();
    const srv = await start(clock, 'ES256', 'ec-1');
    const bodyParams = { grant_type: JWT_BEARER_GRANT, assertion: '{{jwt}}', client_id: 'svc-jwt' };
    const account = testAccount(
      'oauth2-jwt',
      srv.base,
      {
        tokenUrl: srv.tokenUrl,
        claims,
        algorithm: 'ES256',
        keyId: 'ec-1',
        contentType: 'json',
        bodyParams,
      },
      { privateKeyPem: EC_PEM },
    );
    await harness!.run(account, { path: '/a' });

    const call = srv.tokenCalls[0]!;
    expect(call.contentType).toBe('application/json');
    expect(call.body).toBe(
      JSON.stringify({
        grant_type: JWT_BEARER_GRANT,
        assertion: call.params.assertion,
        client_id: 'svc-jwt',
      }),
    );
    expect(srv.assertions[0]!.header).toEqual({ alg: 'ES256', typ: 'JWT', kid: 'ec-1' });
    expect(srv.resourceCalls[0]!.authorization).toBe('Bearer at-1');
  });

  it('reports a refused assertion as AUTH_FLOW_FAILED with invalid_grant', async () => {
    const clock = frozenClock();
    const srv = await start(clock, 'RS256', 'expected-kid');
    const account = testAccount(
      'oauth2-jwt',
      srv.base,
      { tokenUrl: srv.tokenUrl, claims, keyId: 'other-kid' },
      { privateKeyPem: RSA_PEM },
    );
    await expect(harness!.run(account, { path: '/a' })).rejects.toMatchObject({
      code: 'AUTH_FLOW_FAILED',
      message: `the oauth2-jwt token endpoint ${srv.base} answered 400 (error "invalid_grant")`,
    });
    expect(srv.resourceCalls).toHaveLength(0);
  });
});

describe('oauth2-jwt settings checks', () => {
  const settings = {
    tokenUrl: 'https://idp.example.test/token',
    claims: { iss: 'a', aud: 'b', scope: 'c' },
  };

  it('accepts a key that fits the algorithm', () => {
    expect(
      checkAccountFields('oauth2-jwt', settings, { privateKeyPem: RSA_PEM }, true).warnings,
    ).toEqual([]);
    expect(
      checkAccountFields(
        'oauth2-jwt',
        { ...settings, algorithm: 'ES256' },
        { privateKeyPem: EC_PEM },
        true,
      ),
    ).toBeDefined();
  });

  it('refuses a key that does not parse or does not fit the algorithm, naming secrets.privateKeyPem', () => {
    const field = { field: 'secrets.privateKeyPem' };
    const broken = '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n';
    expect(() =>
      checkAccountFields('oauth2-jwt', settings, { privateKeyPem: broken }, true),
    ).toThrow(expect.objectContaining({ code: 'INVALID_SECRET', details: field }));
    expect(() =>
      checkAccountFields('oauth2-jwt', settings, { privateKeyPem: EC_PEM }, true),
    ).toThrow(
      expect.objectContaining({
        code: 'INVALID_SECRET',
        message: 'secrets.privateKeyPem is a ec key; RS256 needs an RSA key',
      }),
    );
    expect(() =>
      checkAccountFields(
        'oauth2-jwt',
        { ...settings, algorithm: 'ES384' },
        { privateKeyPem: EC_PEM },
        true,
      ),
    ).toThrow(expect.objectContaining({ code: 'INVALID_SECRET', details: field }));
  });

  it('names the setting at fault and lists accepted algorithms', () => {
    const secrets = { privateKeyPem: RSA_PEM };
    expect(() =>
      checkAccountFields('oauth2-jwt', { ...settings, algorithm: 'HS256' }, secrets, true),
    ).toThrow(
      expect.objectContaining({
        code: 'INVALID_SETTING',
        message:
          'settings.algorithm must be one of: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, Ed25519',
      }),
    );
    const noAud = { ...settings, claims: { iss: 'a', scope: 'c' } };
    expect(() => checkAccountFields('oauth2-jwt', noAud, secrets, true)).toThrow(
      expect.objectContaining({ details: { field: 'settings.claims.aud' } }),
    );
    const withExp = { ...settings, claims: { ...settings.claims, exp: 1 } };
    expect(() => checkAccountFields('oauth2-jwt', withExp, secrets, true)).toThrow(
      expect.objectContaining({ details: { field: 'settings.claims.exp' } }),
    );
    const noJwt = { ...settings, bodyParams: { grant_type: 'x' } };
    expect(() => checkAccountFields('oauth2-jwt', noJwt, secrets, true)).toThrow(
      expect.objectContaining({ details: { field: 'settings.bodyParams' } }),
    );
  });
});
