import { afterEach, describe, expect, it } from 'vitest';

import { checkAccountFields } from '../../shared/auth/registry.js';
import { createTestExecutor, testAccount } from '../helpers/executor-harness.js';
import { startOAuthServer, type OAuthServer } from '../fixtures/oauth2-server.js';

const CLIENT = {
  id: 'svc',
  secret: 's3cret-value',
  grants: ['client_credentials', 'refresh_token'],
};

describe('oauth2 token requests', () => {
  let server: OAuthServer | undefined;
  const harness = createTestExecutor();

  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('gets a client_credentials token with a JSON body by default and sends it as Bearer', async () => {
    server = await startOAuthServer({ clients: [CLIENT] });
    const account = testAccount(
      'oauth2',
      server.base,
      { tokenUrl: server.tokenUrl, tokenParams: { scope: 'read' } },
      { clientId: 'svc', clientSecret: 's3cret-value' },
    );
    const answer = await harness.run(account, { path: '/items' });

    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toEqual({ ok: true, client: 'svc', user: 'svc' });
    expect(server.tokenCalls).toHaveLength(1);
    const call = server.tokenCalls[0]!;
    expect(call.method).toBe('POST');
    expect(call.url).toBe('/token');
    expect(call.contentType).toBe('application/json');
    expect(call.accept).toBe('application/json');
    expect(call.authorization).toBeUndefined();
    expect(call.body).toBe(
      '{"grant_type":"client_credentials","scope":"read","client_id":"svc","client_secret":"s3cret-value"}',
    );
    expect(server.resourceCalls).toMatchObject([
      { url: '/items', authorization: 'Bearer at-1', status: 200 },
    ]);
  });

  it('sends a form body when contentType is form, and reuses the token', async () => {
    server = await startOAuthServer({ clients: [CLIENT] });
    const account = testAccount(
      'oauth2',
      server.base,
      { tokenUrl: server.tokenUrl, contentType: 'form', tokenParams: { scope: 'read write' } },
      { clientId: 'svc', clientSecret: 's3cret-value' },
    );
    await harness.run(account, { path: '/a' });
    await harness.run(account, { path: '/b' });

    expect(server.tokenCalls).toHaveLength(1);
    expect(server.tokenCalls[0]!.contentType).toBe('application/x-www-form-urlencoded');
    expect(server.tokenCalls[0]!.body).toBe(
      'grant_type=client_credentials&scope=read+write&client_id=svc&client_secret=s3cret-value',
    );
    expect(server.resourceCalls.map((c) => [c.url, c.authorization])).toEqual([
      ['/a', 'Bearer at-1'],
      ['/b', 'Bearer at-1'],
    ]);
  });

  it('form-encodes each part of Basic client credentials (RFC 6749 2.3.1)', async () => {
    const id = 'svc:1 a';
    const secret = 'p@ss w+rd&%';
    server = await startOAuthServer({ clients: [{ id, secret, grants: ['client_credentials'] }] });
    const account = testAccount(
      'oauth2',
      server.base,
      { tokenUrl: server.tokenUrl, contentType: 'form', clientAuthentication: 'basic' },
      { clientId: id, clientSecret: secret },
    );
    const answer = await harness.run(account, { path: '/x' });

    expect(answer.status).toBe(200);
    const call = server.tokenCalls[0]!;
    const expected = Buffer.from('svc%3A1+a:p%40ss+w%2Brd%26%25', 'utf8').toString('base64');
    expect(call.authorization).toBe(`Basic ${expected}`);
    expect(call.body).toBe('grant_type=client_credentials');
  });

  it('sends Bearer whatever case token_type has, and reads a dotted accessTokenKey', async () => {
    server = await startOAuthServer({
      clients: [CLIENT],
      shapeAnswer: (a) => ({
        data: { token: a.access_token, token_type: 'bearer', expires_in: 3600 },
      }),
    });
    const account = testAccount(
      'oauth2',
      server.base,
      { tokenUrl: server.tokenUrl, accessTokenKey: 'data.token' },
      { clientId: 'svc', clientSecret: 's3cret-value' },
    );
    await harness.run(account, { path: '/x' });

    expect(server.resourceCalls).toMatchObject([
      { url: '/x', authorization: 'Bearer at-1', status: 200 },
    ]);
  });

  it('fills {{token}} into custom requestHeaders and puts tokenParams in the query when asked', async () => {
    server = await startOAuthServer({ clients: [CLIENT] });
    const account = testAccount(
      'oauth2',
      server.base,
      {
        tokenUrl: server.tokenUrl,
        contentType: 'form',
        tokenParams: { audience: 'api://x' },
        sendParamsAsQuery: true,
        tokenHeaders: { 'X-Tenant': 't1' },
        requestHeaders: { Authorization: 'Bearer {{token}}', 'X-Token-Copy': 'tok={{token}}' },
      },
      { clientId: 'svc', clientSecret: 's3cret-value' },
    );
    await harness.run(account, { path: '/x' });

    const call = server.tokenCalls[0]!;
    expect(call.contentType).toBe('application/x-www-form-urlencoded');
    expect(call.headers['x-tenant']).toBe('t1');
    expect(call.url).toBe('/token?audience=api%3A%2F%2Fx');
    expect(call.body).toBe(
      'grant_type=client_credentials&client_id=svc&client_secret=s3cret-value',
    );
    expect(server.tokenCalls[0]!.params).toMatchObject({ grant_type: 'client_credentials' });
    expect(server.resourceCalls[0]!.authorization).toBe('Bearer at-1');
    expect(server.resourceCalls[0]!.headers['x-token-copy']).toBe('tok=at-1');
  });

  it('reports a refused client as AUTH_FLOW_FAILED with the status and error code only', async () => {
    server = await startOAuthServer({ clients: [CLIENT] });
    const account = testAccount(
      'oauth2',
      server.base,
      { tokenUrl: server.tokenUrl },
      { clientId: 'svc', clientSecret: 'wrong-secret-value' },
    );
    const failure = await harness.run(account, { path: '/x' }).catch((e: unknown) => e);

    expect(failure).toMatchObject({ code: 'AUTH_FLOW_FAILED' });
    const message = (failure as Error).message;
    expect(message).toBe(
      `the oauth2 token endpoint ${server.base} answered 400 (error "invalid_client")`,
    );
    expect(message).not.toContain('wrong-secret-value');
    expect(server.resourceCalls).toHaveLength(0);
  });

  it('runs the token exchange through the mtlsAccountId account', async () => {
    server = await startOAuthServer({ clients: [CLIENT] });
    const account = testAccount(
      'oauth2',
      server.base,
      { tokenUrl: server.tokenUrl, mtlsAccountId: 'acct_missing' },
      { clientId: 'svc', clientSecret: 's3cret-value' },
    );
    await expect(harness.run(account, { path: '/x' })).rejects.toMatchObject({
      code: 'AUTH_FLOW_FAILED',
      message: 'account acct_missing (mtlsAccountId) is not known here',
    });
    expect(server.tokenCalls).toHaveLength(0);
  });
});

describe('oauth2 settings checks', () => {
  const secrets = { clientId: 'svc', clientSecret: 'x' };

  it('refuses a token URL that is not absolute http(s)', () => {
    expect(() => checkAccountFields('oauth2', { tokenUrl: '/token' }, secrets, true)).toThrow(
      expect.objectContaining({ code: 'INVALID_SETTING', details: { field: 'settings.tokenUrl' } }),
    );
    expect(() => checkAccountFields('oauth2', { tokenUrl: 'ftp://h/t' }, secrets, true)).toThrow(
      expect.objectContaining({ code: 'INVALID_SETTING', details: { field: 'settings.tokenUrl' } }),
    );
  });

  it('lists the accepted values of an enum', () => {
    const tokenUrl = 'https://idp.example.test/token';
    expect(() =>
      checkAccountFields('oauth2', { tokenUrl, contentType: 'xml' }, secrets, true),
    ).toThrow(
      expect.objectContaining({
        code: 'INVALID_SETTING',
        message: 'settings.contentType must be one of: json, form',
      }),
    );
    expect(() =>
      checkAccountFields('oauth2', { tokenUrl, clientAuthentication: 'jwt' }, secrets, true),
    ).toThrow(
      expect.objectContaining({
        message: 'settings.clientAuthentication must be one of: body, basic',
      }),
    );
  });

  it('refuses CR/LF in header values and secrets, and requires the client secret', () => {
    const tokenUrl = 'https://idp.example.test/token';
    const bad = { tokenUrl, requestHeaders: { 'X-A': 'Bearer {{token}}\r\nX-B: 1' } };
    expect(() => checkAccountFields('oauth2', bad, secrets, true)).toThrow(
      expect.objectContaining({
        code: 'INVALID_SETTING',
        details: { field: 'settings.requestHeaders.X-A' },
      }),
    );
    const noToken = { tokenUrl, requestHeaders: { 'X-A': 'static' } };
    expect(() => checkAccountFields('oauth2', noToken, secrets, true)).toThrow(
      expect.objectContaining({
        code: 'INVALID_SETTING',
        details: { field: 'settings.requestHeaders' },
      }),
    );
    expect(() =>
      checkAccountFields('oauth2', { tokenUrl }, { clientId: 'svc', clientSecret: 'a\nb' }, true),
    ).toThrow(
      expect.objectContaining({
        code: 'INVALID_SECRET',
        details: { field: 'secrets.clientSecret' },
      }),
    );
    expect(() => checkAccountFields('oauth2', { tokenUrl }, { clientId: 'svc' }, true)).toThrow(
      expect.objectContaining({
        code: 'INVALID_SECRET',
        details: { field: 'secrets.clientSecret' },
      }),
    );
    expect(checkAccountFields('oauth2', { tokenUrl }, secrets, true).warnings).toEqual([]);
  });
});
