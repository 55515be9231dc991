import { afterEach, describe, expect, it } from 'vitest';

import { createTestExecutor, MemoryStateStore, testAccount } from '../helpers/executor-harness.js';
import { startOAuthServer, type OAuthServer } from '../fixtures/oauth2-server.js';

const CLIENT = {
  id: 'svc',
  secret: 's3cret-value',
  grants: ['client_credentials', 'refresh_token'],
};
const SECRETS = { clientId: 'svc', clientSecret: 's3cret-value' };

/** A clock that tests move by hand. */
function frozenClock() {
  let now = Date.now();
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('oauth2 token renewal', () => {
  let server: OAuthServer | undefined;
  let harness: ReturnType<typeof createTestExecutor> | undefined;

  afterEach(async () => {
    await harness?.close();
    await server?.close();
    server = undefined;
  });

  it('refreshes after a 401, stores the rotated refresh token before using it, and retries', async () => {
    harness = createTestExecutor();
    const writesWhenCalled: Array<Array<unknown>> = [];
    const state = harness.state;
    server = await startOAuthServer({
      clients: [CLIENT],
      onTokenCall: () => writesWhenCalled.push(state.writes.map((w) => w.state.refreshToken)),
    });
    server.seedRefreshToken('svc', 'rt-seed');
    const account = testAccount(
      'oauth2',
      server.base,
      { tokenUrl: server.tokenUrl, contentType: 'form' },
      {
        ...SECRETS,
        refreshToken: 'rt-seed',
      },
    );

    await harness.run(account, { path: '/a' });
    server.revokeAccessToken('at-1');
    const answer = await harness.run(account, { path: '/b' });

    expect(answer.status).toBe(200);
    expect(server.tokenCalls.map((c) => c.body)).toEqual([
      'grant_type=refresh_token&refresh_token=rt-seed&client_id=svc&client_secret=s3cret-value',
      'grant_type=refresh_token&refresh_token=rt-2&client_id=svc&client_secret=s3cret-value',
    ]);
    // rt-2 was written before the request that spent it left.
    expect(writesWhenCalled).toEqual([[], ['rt-2']]);
    expect(server.resourceCalls.map((c) => [c.url, c.authorization, c.status])).toEqual([
      ['/a', 'Bearer at-1', 200],
      ['/b', 'Bearer at-1', 401],
      ['/b', 'Bearer at-3', 200],
    ]);
    expect(state.get(account.id)).toMatchObject({ accessToken: 'at-3', refreshToken: 'rt-4' });
  });

  it('keeps the refresh token it holds when the answer carries none', async () => {
    harness = createTestExecutor();
    server = await startOAuthServer({
      clients: [CLIENT],
      rotateRefreshTokens: false,
      shapeAnswer: ({ refresh_token: _dropped, ...rest }) => rest,
    });
    server.seedRefreshToken('svc', 'rt-seed');
    const account = testAccount(
      'oauth2',
      server.base,
      { tokenUrl: server.tokenUrl },
      {
        ...SECRETS,
        refreshToken: 'rt-seed',
      },
    );

    await harness.run(account, { path: '/a' });
    server.revokeAccessToken('at-1');
    await harness.run(account, { path: '/b' });

    expect(server.tokenCalls.map((c) => c.params.refresh_token)).toEqual(['rt-seed', 'rt-seed']);
    // The library's generator counts the refresh tokens it made (and the fixture dropped) too.
    expect(server.resourceCalls.map((c) => [c.authorization, c.status])).toEqual([
      ['Bearer at-1', 200],
      ['Bearer at-1', 401],
      ['Bearer at-3', 200],
    ]);
    expect(harness.state.get(account.id)).toMatchObject({
      accessToken: 'at-3',
      refreshToken: 'rt-seed',
    });
  });

  it('renews a token 60 s before it expires, with client_credentials when no refresh token is held', async () => {
    const clock = frozenClock();
    harness = createTestExecutor({ now: clock.now });
    server = await startOAuthServer({ clients: [CLIENT], accessTokenLifetime: 120 });
    const account = testAccount('oauth2', server.base, { tokenUrl: server.tokenUrl }, SECRETS);

    await harness.run(account, { path: '/a' });
    // The server library rounds expires_in down from its own clock, so a slow answer may say
    // 119 s: stay a second clear of the renewal point on both sides.
    clock.advance(58_000);
    await harness.run(account, { path: '/b' });
    clock.advance(2_001);
    await harness.run(account, { path: '/c' });

    expect(server.tokenCalls.map((c) => c.params.grant_type)).toEqual([
      'client_credentials',
      'client_credentials',
    ]);
    expect(server.resourceCalls.map((c) => [c.url, c.authorization])).toEqual([
      ['/a', 'Bearer at-1'],
      ['/b', 'Bearer at-1'],
      ['/c', 'Bearer at-2'],
    ]);
  });

  it('assumes an hour when the answer has no expires_in', async () => {
    const clock = frozenClock();
    harness = createTestExecutor({ now: clock.now });
    server = await startOAuthServer({
      clients: [CLIENT],
      shapeAnswer: ({ expires_in: _dropped, ...rest }) => rest,
    });
    const account = testAccount('oauth2', server.base, { tokenUrl: server.tokenUrl }, SECRETS);

    await harness.run(account, { path: '/a' });
    clock.advance(3_539_999);
    await harness.run(account, { path: '/b' });
    clock.advance(1);
    await harness.run(account, { path: '/c' });

    expect(server.tokenCalls).toHaveLength(2);
    expect(harness.state.get(account.id)).toMatchObject({ expiresAt: clock.now() + 3_600_000 });
    expect(server.resourceCalls.map((c) => c.authorization)).toEqual([
      'Bearer at-1',
      'Bearer at-1',
      'Bearer at-2',
    ]);
  });

  it('makes one token request when 20 jobs meet an expired token at once', async () => {
    const clock = frozenClock();
    harness = createTestExecutor({ now: clock.now });
    server = await startOAuthServer({ clients: [CLIENT], answerDelayMs: 100 });
    const account = testAccount('oauth2', server.base, { tokenUrl: server.tokenUrl }, SECRETS);

    await harness.run(account, { path: '/first' });
    clock.advance(3_600_000);
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => harness!.run(account, { path: `/job/${i}` })),
    );

    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(server.tokenCalls).toHaveLength(2);
    const jobs = server.resourceCalls.filter((c) => c.url.startsWith('/job/'));
    expect(jobs).toHaveLength(20);
    expect(new Set(jobs.map((c) => c.authorization))).toEqual(new Set(['Bearer at-2']));
  });

  it('spends a rotating refresh token once when 20 jobs get a 401 at once', async () => {
    harness = createTestExecutor();
    server = await startOAuthServer({ clients: [CLIENT], answerDelayMs: 50 });
    server.seedRefreshToken('svc', 'rt-seed');
    const account = testAccount(
      'oauth2',
      server.base,
      { tokenUrl: server.tokenUrl },
      {
        ...SECRETS,
        refreshToken: 'rt-seed',
      },
    );

    await harness.run(account, { path: '/first' });
    server.revokeAccessToken('at-1');
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => harness!.run(account, { path: `/job/${i}` })),
    );

    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(server.tokenCalls.map((c) => c.params.refresh_token)).toEqual(['rt-seed', 'rt-2']);
    const retried = server.resourceCalls.filter(
      (c) => c.status === 200 && c.url.startsWith('/job/'),
    );
    expect(new Set(retried.map((c) => c.authorization))).toEqual(new Set(['Bearer at-3']));
  });

  it('uses a given access token until the target refuses it, then refreshes', async () => {
    harness = createTestExecutor();
    server = await startOAuthServer({ clients: [CLIENT] });
    server.seedRefreshToken('svc', 'rt-seed');
    const account = testAccount(
      'oauth2',
      server.base,
      { tokenUrl: server.tokenUrl },
      {
        ...SECRETS,
        accessToken: 'given-token',
        refreshToken: 'rt-seed',
      },
    );

    const answer = await harness.run(account, { path: '/a' });

    expect(answer.status).toBe(200);
    expect(server.resourceCalls.map((c) => [c.authorization, c.status])).toEqual([
      ['Bearer given-token', 401],
      ['Bearer at-1', 200],
    ]);
    expect(server.tokenCalls.map((c) => c.params.grant_type)).toEqual(['refresh_token']);
  });

  it('keeps tokens across a restart through the state store', async () => {
    const state = new MemoryStateStore();
    server = await startOAuthServer({ clients: [CLIENT] });
    const account = testAccount('oauth2', server.base, { tokenUrl: server.tokenUrl }, SECRETS);
    const first = createTestExecutor({ state });
    await first.run(account, { path: '/a' });
    await first.close();

    harness = createTestExecutor({ state });
    await harness.run(account, { path: '/b' });

    expect(server.tokenCalls).toHaveLength(1);
    expect(server.resourceCalls.map((c) => c.authorization)).toEqual([
      'Bearer at-1',
      'Bearer at-1',
    ]);
  });

  it('retries only once: a fresh token that is refused again gives the 401 back', async () => {
    harness = createTestExecutor();
    server = await startOAuthServer({
      clients: [CLIENT],
      shapeAnswer: (a) => ({ ...a, access_token: `bogus-${String(a.access_token)}` }),
    });
    const account = testAccount('oauth2', server.base, { tokenUrl: server.tokenUrl }, SECRETS);

    const answer = await harness.run(account, { path: '/a' });

    expect(answer.status).toBe(401);
    expect(server.tokenCalls).toHaveLength(2);
    expect(server.resourceCalls.map((c) => c.authorization)).toEqual([
      'Bearer bogus-at-1',
      'Bearer bogus-at-2',
    ]);
  });
});
