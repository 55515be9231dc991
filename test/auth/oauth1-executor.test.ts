import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { checkAccountFields } from '../../shared/auth/registry.js';
import { startOAuth1Server, type OAuth1Server } from '../fixtures/oauth1-server.js';
import { createTestExecutor, testAccount } from '../helpers/executor-harness.js';

const consumer = { consumerKey: 'key-1', consumerSecret: 'cons&secret%' };
const token = { token: 'tok-1', tokenSecret: 'tok secret' };

describe('oauth1 accounts checked when saved', () => {
  const check = (settings: Record<string, unknown>, secrets: Record<string, unknown>) =>
    checkAccountFields('oauth1', settings, secrets, true);

  it('defaults the signature method to HMAC-SHA1', () => {
    expect(check({}, consumer).settings.signatureMethod).toBe('HMAC-SHA1');
  });

  it('refuses an unknown signature method, naming the field and the accepted values', () => {
    expect(() => check({ signatureMethod: 'RSA-SHA1' }, consumer)).toThrow(
      expect.objectContaining({
        code: 'INVALID_SETTING',
        details: { field: 'settings.signatureMethod' },
        message: expect.stringContaining('HMAC-SHA1, HMAC-SHA256, PLAINTEXT') as unknown,
      }),
    );
  });

  it('requires the consumer key and secret', () => {
    expect(() => check({}, { consumerKey: 'k' })).toThrow(
      expect.objectContaining({
        code: 'INVALID_SECRET',
        details: { field: 'secrets.consumerSecret' },
      }),
    );
    expect(() => check({}, { consumerSecret: 's' })).toThrow(
      expect.objectContaining({
        code: 'INVALID_SECRET',
        details: { field: 'secrets.consumerKey' },
      }),
    );
  });

  it('refuses line breaks in any secret without repeating the secret', () => {
    for (const field of ['consumerKey', 'consumerSecret', 'token', 'tokenSecret']) {
      const secrets = { ...consumer, ...token, [field]: 'hunter2\r\nX: y' };
      let caught: unknown;
      try {
        check({}, secrets);
      } catch (err) {
        caught = err;
      }
      expect(caught).toMatchObject({
        code: 'INVALID_SECRET',
        details: { field: `secrets.${field}` },
      });
      expect(String((caught as Error).message)).not.toContain('hunter2');
    }
  });

  it('refuses a token secret without a token, an unknown secret and a realm that breaks quoting', () => {
    expect(() => check({}, { ...consumer, tokenSecret: 'x' })).toThrow(
      expect.objectContaining({ code: 'INVALID_SECRET' }),
    );
    expect(() => check({}, { ...consumer, password: 'x' })).toThrow(
      expect.objectContaining({ code: 'INVALID_SECRET', details: { field: 'secrets.password' } }),
    );
    expect(() => check({ realm: 'a"b' }, consumer)).toThrow(
      expect.objectContaining({ code: 'INVALID_SETTING', details: { field: 'settings.realm' } }),
    );
  });

  it('checks settings but not secrets when the secrets are sealed', () => {
    expect(checkAccountFields('oauth1', { realm: 'r' }, {}, false).settings).toMatchObject({
      realm: 'r',
      signatureMethod: 'HMAC-SHA1',
    });
  });
});

describe('oauth1 requests through the executor to a server that verifies the signature', () => {
  let server: OAuth1Server;
  const harness = createTestExecutor({ now: () => Date.UTC(2024, 0, 2, 3, 4, 5) });

  beforeAll(async () => {
    server = await startOAuth1Server({
      consumers: new Map([[consumer.consumerKey, consumer.consumerSecret]]),
      tokens: new Map([[token.token, token.tokenSecret]]),
    });
  });

  afterAll(async () => {
    await harness.close();
    await server.close();
  });

  const account = (settings: Record<string, unknown> = {}, secrets: Record<string, unknown> = {}) =>
    testAccount('oauth1', `${server.url}/api`, settings, { ...consumer, ...token, ...secrets });

  it.each(['HMAC-SHA1', 'HMAC-SHA256', 'PLAINTEXT'])(
    'is accepted with %s, query parameters awkward and repeated',
    async (signatureMethod) => {
      const answer = await harness.run(account({ signatureMethod, realm: 'Photos' }), {
        method: 'GET',
        path: "/items/a b/ü?x=1&x=0&plus=a+b&enc=%2F%3D&bang=!*'()",
        query: { q: 'a b&c', empty: '', many: ['2', '1', ''] },
      });
      expect(answer.status, answer.text).toBe(200);
      const last = server.seen.at(-1)!;
      expect(last.headers.authorization).toMatch(
        /^OAuth realm="Photos", oauth_consumer_key="key-1"/,
      );
      expect(last.headers.authorization).toContain(`oauth_signature_method="${signatureMethod}"`);
      expect(last.headers.authorization).toContain('oauth_timestamp="1704164645"');
    },
  );

  it('signs the parameters of a form body', async () => {
    const answer = await harness.run(account(), {
      method: 'POST',
      path: '/form?a3=a',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'a3=2+q&c2=&status=Hello%20Ladies%20%2B%20Gentlemen',
    });
    expect(answer.status, answer.text).toBe(200);
  });

  it('does not sign a JSON body', async () => {
    const answer = await harness.run(account(), { method: 'POST', path: '/json', body: { a: 1 } });
    expect(answer.status, answer.text).toBe(200);
    expect(server.seen.at(-1)!.headers['content-type']).toBe('application/json');
  });

  it('is accepted with consumer credentials only (two-legged)', async () => {
    const twoLegged = testAccount('oauth1', server.url, {}, consumer);
    expect((await harness.run(twoLegged, { path: '/two?z=1' })).status).toBe(200);
    expect(server.seen.at(-1)!.headers.authorization).not.toContain('oauth_token');
  });

  it('is refused with 401 when a secret is wrong', async () => {
    const wrongConsumer = await harness.run(account({}, { consumerSecret: 'nope' }), {
      path: '/x',
    });
    expect(wrongConsumer.status).toBe(401);
    const wrongToken = await harness.run(account({}, { tokenSecret: 'nope' }), { path: '/x' });
    expect(wrongToken.status).toBe(401);
  });

  it('uses a fresh nonce for each request', async () => {
    await harness.run(account(), { path: '/n' });
    await harness.run(account(), { path: '/n' });
    const nonces = server.seen
      .slice(-2)
      .map((s) => /oauth_nonce="([^"]+)"/.exec(String(s.headers.authorization))?.[1]);
    expect(nonces[0]).toBeTruthy();
    expect(nonces[0]).not.toBe(nonces[1]);
  });
});
