import { afterEach, describe, expect, it } from 'vitest';

import { checkAccountFields } from '../../shared/auth/registry.js';
import { createTestExecutor, testAccount } from '../helpers/executor-harness.js';
import { startCookieServer, type CookieServer } from '../fixtures/cookie-server.js';

const LOGIN = { user: 'ann', pass: 'p w' };

function frozenClock() {
  let now = Date.now();
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('cookie', () => {
  let server: CookieServer | undefined;
  let harness: ReturnType<typeof createTestExecutor> | undefined;

  afterEach(async () => {
    await harness?.close();
    await server?.close();
    server = undefined;
  });

  it('keeps every cookie of the login, honours each Path and drops the expired one', async () => {
    server = await startCookieServer(LOGIN);
    harness = createTestExecutor();
    const account = testAccount(
      'cookie',
      server.base,
      { loginPath: '/api/login' },
      { loginBody: LOGIN },
    );

    const api = await harness.run(account, { path: '/api/items' });
    await harness.run(account, { path: '/other' });

    expect(api.status).toBe(200);
    expect(server.logins).toEqual([
      {
        method: 'POST',
        url: '/api/login',
        contentType: 'application/json',
        cookie: undefined,
        body: '{"user":"ann","pass":"p w"}',
      },
    ]);
    expect(server.pages).toEqual([
      { url: '/api/items', cookie: 'sid=s-1; pref=dark', status: 200 },
      { url: '/other', cookie: 'pref=dark', status: 200 },
    ]);
    const jar = harness.state.get(account.id)!.cookies as Array<{ name: string }>;
    expect(jar.map((c) => c.name)).toEqual(['sid', 'pref']);
  });

  it('logs in again after a 401 and retries once with the new session', async () => {
    server = await startCookieServer(LOGIN);
    harness = createTestExecutor();
    const account = testAccount(
      'cookie',
      server.base,
      { loginPath: '/api/login' },
      { loginBody: LOGIN },
    );

    await harness.run(account, { path: '/api/a' });
    server.endSessions();
    const answer = await harness.run(account, { path: '/api/b' });

    expect(answer.status).toBe(200);
    expect(server.logins).toHaveLength(2);
    expect(server.pages).toEqual([
      { url: '/api/a', cookie: 'sid=s-1; pref=dark', status: 200 },
      { url: '/api/b', cookie: 'sid=s-1; pref=dark', status: 401 },
      { url: '/api/b', cookie: 'sid=s-2; pref=dark', status: 200 },
    ]);
  });

  it('sends a given cookie as is, and logs in with a form body after the target refuses it', async () => {
    server = await startCookieServer({ ...LOGIN, loginStatus: 302 });
    harness = createTestExecutor();
    const account = testAccount(
      'cookie',
      server.base,
      { loginPath: `${server.base}/api/login`, loginContentType: 'form' },
      { cookie: 'sid=given-1; theme=x', loginBody: LOGIN },
    );
    await harness.run(account, { path: '/open' });
    const answer = await harness.run(account, { path: '/api/x' });

    expect(answer.status).toBe(200);
    expect(server.logins.map((l) => [l.contentType, l.body])).toEqual([
      ['application/x-www-form-urlencoded', 'user=ann&pass=p+w'],
    ]);
    expect(server.pages).toEqual([
      { url: '/open', cookie: 'sid=given-1; theme=x', status: 200 },
      { url: '/api/x', cookie: 'sid=given-1; theme=x', status: 401 },
      { url: '/api/x', cookie: 'sid=s-1; pref=dark', status: 200 },
    ]);
  });

  it('fails with AUTH_FLOW_FAILED when a given cookie is refused and there is no way to log in', async () => {
    server = await startCookieServer(LOGIN);
    harness = createTestExecutor();
    const account = testAccount('cookie', server.base, {}, { cookie: 'sid=stale' });

    await expect(harness.run(account, { path: '/api/x' })).rejects.toMatchObject({
      code: 'AUTH_FLOW_FAILED',
      message: 'the target answered 401 and the credentials could not be renewed',
    });
    expect(server.pages).toEqual([{ url: '/api/x', cookie: 'sid=stale', status: 401 }]);
  });

  it('honours Max-Age: a cookie past its age is not sent and the next request logs in', async () => {
    const clock = frozenClock();
    server = await startCookieServer({
      ...LOGIN,
      setCookies: (sid) => [`sid=${sid}; Path=/; Max-Age=60`],
    });
    harness = createTestExecutor({ now: clock.now });
    const account = testAccount(
      'cookie',
      server.base,
      { loginPath: '/api/login' },
      { loginBody: LOGIN },
    );

    await harness.run(account, { path: '/api/a' });
    clock.advance(59_999);
    await harness.run(account, { path: '/api/b' });
    clock.advance(1);
    await harness.run(account, { path: '/api/c' });

    expect(server.logins).toHaveLength(2);
    expect(server.pages.map((p) => [p.url, p.cookie, p.status])).toEqual([
      ['/api/a', 'sid=s-1', 200],
      ['/api/b', 'sid=s-1', 200],
      ['/api/c', 'sid=s-2', 200],
    ]);
  });

  it('logs in once for many requests that start together', async () => {
    server = await startCookieServer(LOGIN);
    harness = createTestExecutor();
    const account = testAccount(
      'cookie',
      server.base,
      { loginPath: '/api/login' },
      { loginBody: LOGIN },
    );

    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => harness!.run(account, { path: `/api/${i}` })),
    );

    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
    expect(server.logins).toHaveLength(1);
    expect(new Set(server.pages.map((p) => p.cookie))).toEqual(new Set(['sid=s-1; pref=dark']));
  });

  it('reports a refused login with its status, and refuses a login URL on another host', async () => {
    server = await startCookieServer(LOGIN);
    harness = createTestExecutor();
    const wrong = testAccount(
      'cookie',
      server.base,
      { loginPath: '/api/login' },
      {
        loginBody: { user: 'ann', pass: 'nope-wrong' },
      },
    );
    await expect(harness.run(wrong, { path: '/api/x' })).rejects.toMatchObject({
      code: 'AUTH_FLOW_FAILED',
      message: `the login at ${server.base} answered 401`,
    });

    const elsewhere = testAccount(
      'cookie',
      server.base,
      { loginPath: 'http://127.0.0.2:9/login' },
      {
        loginBody: LOGIN,
      },
    );
    await expect(harness.run(elsewhere, { path: '/api/x' })).rejects.toMatchObject({
      code: 'INVALID_SETTING',
      details: { field: 'settings.loginPath' },
    });
    expect(server.pages).toHaveLength(0);
    expect(server.logins).toHaveLength(1);
  });
});

describe('cookie settings checks', () => {
  it('lists accepted values, refuses CR/LF and needs a way to authenticate', () => {
    const secrets = { loginBody: LOGIN };
    expect(() =>
      checkAccountFields('cookie', { loginPath: '/login', loginMethod: 'GET' }, secrets, true),
    ).toThrow(
      expect.objectContaining({
        code: 'INVALID_SETTING',
        message: 'settings.loginMethod must be one of: POST, PUT, PATCH',
      }),
    );
    expect(() =>
      checkAccountFields('cookie', { loginPath: '/login', loginContentType: 'xml' }, secrets, true),
    ).toThrow(
      expect.objectContaining({ message: 'settings.loginContentType must be one of: json, form' }),
    );
    expect(() => checkAccountFields('cookie', {}, { cookie: 'a=b\r\nX-Evil: 1' }, true)).toThrow(
      expect.objectContaining({ code: 'INVALID_SECRET', details: { field: 'secrets.cookie' } }),
    );
    expect(() => checkAccountFields('cookie', { loginPath: '/login' }, {}, true)).toThrow(
      expect.objectContaining({ code: 'INVALID_SECRET', details: { field: 'secrets.loginBody' } }),
    );
    expect(() => checkAccountFields('cookie', {}, secrets, true)).toThrow(
      expect.objectContaining({
        code: 'INVALID_SETTING',
        details: { field: 'settings.loginPath' },
      }),
    );
    expect(() =>
      checkAccountFields('cookie', { loginPath: 'ftp://h/login' }, secrets, true),
    ).toThrow(
      expect.objectContaining({
        code: 'INVALID_SETTING',
        details: { field: 'settings.loginPath' },
      }),
    );
    expect(checkAccountFields('cookie', { loginPath: '/login' }, secrets, true).warnings).toEqual(
      [],
    );
  });
});
