/**
 * `oauth2`: an access token from a token endpoint (client_credentials, or refresh_token when a
 * refresh token is held), sent through `requestHeaders` and renewed before expiry or after a
 * 401. Tokens live in `ctx.state` (see token-cache.ts); the client secret goes in the body or,
 * with `clientAuthentication: basic`, in a Basic header with each part form-encoded first as
 * RFC 6749 section 2.3.1 requires.
 */
import type { FieldMap, ResolvedAccount } from '../accounts.js';
import { OutpostError } from '../errors.js';
import { assertNoLineBreaks, optionalString, requireString } from './common-settings.js';
import { readBoolean, readEnum, readHeaderMap, readHttpUrl, readParamMap } from './field-checks.js';
import { applyRequestHeaders, readRequestHeaders } from './header-template.js';
import { TokenCache, fingerprintOf, type CachedToken, type TokenSource } from './token-cache.js';
import { readTokenAnswer, type TokenAnswer } from './token-response.js';
import type { AuthContext, AuthHandler } from './types.js';

/** Accepted `contentType` values of the token request. */
export const OAUTH2_CONTENT_TYPES = ['json', 'form'] as const;
/** Accepted `clientAuthentication` values. */
export const OAUTH2_CLIENT_AUTHENTICATIONS = ['body', 'basic'] as const;

/** Parameters Outpost sets itself; `tokenParams` may not override them. */
const RESERVED_PARAMS = ['grant_type', 'refresh_token', 'client_secret'];

/** The settings of an `oauth2` account, defaults applied. */
export interface OAuth2Options {
  tokenUrl: URL;
  contentType: (typeof OAUTH2_CONTENT_TYPES)[number];
  clientAuthentication: (typeof OAUTH2_CLIENT_AUTHENTICATIONS)[number];
  tokenParams: Record<string, string>;
  tokenHeaders: Record<string, string>;
  accessTokenKey: string;
  refreshTokenKey: string;
  sendParamsAsQuery: boolean;
  requestHeaders: Record<string, string>;
  mtlsAccountId: string | undefined;
}

function readKey(settings: FieldMap, key: string, fallback: string): string {
  return optionalString(settings, key, 'settings') || fallback;
}

/** Checks the settings of an `oauth2` account and applies the defaults. */
export function oauth2Options(settings: FieldMap): OAuth2Options {
  const tokenParams = readParamMap(settings, 'tokenParams', 'settings') ?? {};
  for (const name of RESERVED_PARAMS) {
    if (Object.hasOwn(tokenParams, name)) {
      throw new OutpostError('INVALID_SETTING', `settings.tokenParams may not set ${name}`, {
        field: `settings.tokenParams.${name}`,
      });
    }
  }
  const mtlsAccountId = optionalString(settings, 'mtlsAccountId', 'settings');
  return {
    tokenUrl: readHttpUrl(settings.tokenUrl, 'settings.tokenUrl'),
    contentType: readEnum(settings, 'contentType', OAUTH2_CONTENT_TYPES, 'json'),
    clientAuthentication: readEnum(
      settings,
      'clientAuthentication',
      OAUTH2_CLIENT_AUTHENTICATIONS,
      'body',
    ),
    tokenParams,
    tokenHeaders: readHeaderMap(settings, 'tokenHeaders', 'settings') ?? {},
    accessTokenKey: readKey(settings, 'accessTokenKey', 'access_token'),
    refreshTokenKey: readKey(settings, 'refreshTokenKey', 'refresh_token'),
    sendParamsAsQuery: readBoolean(settings, 'sendParamsAsQuery', false),
    requestHeaders: readRequestHeaders(settings),
    mtlsAccountId: mtlsAccountId === '' ? undefined : mtlsAccountId,
  };
}

/** Options compiled once per account object (accounts are replaced, not mutated, on change). */
const compiled = new WeakMap<ResolvedAccount, OAuth2Options>();

function optionsOf(account: ResolvedAccount): OAuth2Options {
  let options = compiled.get(account);
  if (!options) {
    options = oauth2Options(account.settings);
    compiled.set(account, options);
  }
  return options;
}

/** `application/x-www-form-urlencoded` encoding of one value (spaces become `+`). */
export function formEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1);
}

/** The `Authorization` value of RFC 6749 section 2.3.1 client authentication. */
export function clientBasicHeader(clientId: string, clientSecret: string): string {
  const pair = `${formEncode(clientId)}:${formEncode(clientSecret)}`;
  return `Basic ${Buffer.from(pair, 'utf8').toString('base64')}`;
}

async function fetchToken(ctx: AuthContext, held: CachedToken | undefined): Promise<TokenAnswer> {
  const options = optionsOf(ctx.account);
  const { clientId, clientSecret } = ctx.account.secrets as {
    clientId: string;
    clientSecret: string;
  };
  const url = new URL(options.tokenUrl);
  const params: Record<string, string> =
    held?.refreshToken !== undefined
      ? { grant_type: 'refresh_token', refresh_token: held.refreshToken }
      : { grant_type: 'client_credentials' };
  // Only the non-secret tokenParams go in the query; tokens and secrets would land in access logs.
  for (const [name, value] of Object.entries(options.tokenParams)) {
    if (options.sendParamsAsQuery) url.searchParams.append(name, value);
    else params[name] = value;
  }
  const headers: Record<string, string> = { ...options.tokenHeaders, accept: 'application/json' };
  if (options.clientAuthentication === 'basic') {
    headers.authorization = clientBasicHeader(clientId, clientSecret);
  } else {
    params.client_id = clientId;
    params.client_secret = clientSecret;
  }
  const json = options.contentType === 'json';
  headers['content-type'] = json ? 'application/json' : 'application/x-www-form-urlencoded';
  const body = json ? JSON.stringify(params) : new URLSearchParams(params).toString();

  const res = await ctx.authRequest({
    method: 'POST',
    url,
    headers,
    body: Buffer.from(body, 'utf8'),
    ...(options.mtlsAccountId !== undefined ? { viaAccountId: options.mtlsAccountId } : {}),
  });
  return readTokenAnswer(
    res,
    { accessTokenKey: options.accessTokenKey, refreshTokenKey: options.refreshTokenKey },
    `the oauth2 token endpoint ${url.origin}`,
  );
}

const source: TokenSource = {
  name: 'oauth2',
  fingerprint(account) {
    const { secrets, settings } = account;
    return fingerprintOf([
      settings.tokenUrl,
      secrets.clientId,
      secrets.accessToken ?? null,
      secrets.refreshToken ?? null,
    ]);
  },
  given(account) {
    const accessToken = account.secrets.accessToken;
    const refreshToken = account.secrets.refreshToken;
    if (typeof accessToken !== 'string' && typeof refreshToken !== 'string') return undefined;
    // A given access token has no known age: it is used until the target answers 401.
    return {
      accessToken: typeof accessToken === 'string' && accessToken !== '' ? accessToken : undefined,
      refreshToken:
        typeof refreshToken === 'string' && refreshToken !== '' ? refreshToken : undefined,
      expiresAt: null,
      refreshAt: null,
    };
  },
  fetch: fetchToken,
};

const cache = new TokenCache(source);

/** The `oauth2` auth type. */
export const oauth2Auth: AuthHandler = {
  secretFields: ['clientId', 'clientSecret', 'accessToken', 'refreshToken'],
  check(settings, secrets, secretsKnown) {
    oauth2Options(settings);
    if (secretsKnown) {
      for (const key of ['clientId', 'clientSecret']) {
        assertNoLineBreaks(requireString(secrets, key, 'secrets'), `secrets.${key}`, 'secrets');
      }
      for (const key of ['accessToken', 'refreshToken']) {
        const value = optionalString(secrets, key, 'secrets');
        if (value !== undefined) assertNoLineBreaks(value, `secrets.${key}`, 'secrets');
      }
    }
    return { settings, secrets, warnings: [] };
  },
  async apply(req, ctx) {
    const options = optionsOf(ctx.account);
    applyRequestHeaders(req.headers, options.requestHeaders, await cache.tokenFor(req, ctx));
  },
  onUnauthorized(req, ctx) {
    return cache.renewAfterUnauthorized(req, ctx);
  },
  extraOrigins(account) {
    return [new URL(optionsOf(account).tokenUrl)];
  },
};
