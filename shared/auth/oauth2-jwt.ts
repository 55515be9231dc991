/**
 * `oauth2-jwt`: the JWT bearer grant of RFC 7523. A JWT with the configured claims, `iat`, `exp`
 * and a fresh `jti` is signed with `jose` and exchanged at `tokenUrl` for an access token, which
 * is cached in `ctx.state` until it expires (token-cache.ts) and renewed once after a 401.
 */
import { randomUUID, type KeyObject } from 'node:crypto';

import { SignJWT } from 'jose';

import type { FieldMap, ResolvedAccount } from '../accounts.js';
import { OutpostError } from '../errors.js';
import { registerSecret } from '../logger.js';
import { optionalString } from './common-settings.js';
import { readEnum, readHttpUrl, readParamMap } from './field-checks.js';
import { applyRequestHeaders, readRequestHeaders } from './header-template.js';
import { JWT_ALGORITHMS, loadSigningKey, type JwtAlgorithm } from './jwt-key.js';
import { TokenCache, fingerprintOf, type TokenSource } from './token-cache.js';
import { readTokenAnswer, type TokenAnswer } from './token-response.js';
import type { AuthContext, AuthHandler } from './types.js';

/** Accepted `contentType` values of the token request. */
export const JWT_CONTENT_TYPES = ['form', 'json'] as const;

/** The placeholder of the signed JWT in `bodyParams`. */
export const JWT_PLACEHOLDER = '{{jwt}}';

/** The default `bodyParams`: the RFC 7523 grant. */
export const DEFAULT_BODY_PARAMS: Readonly<Record<string, string>> = {
  grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
  assertion: JWT_PLACEHOLDER,
};

/** `iat` is set this far back so that a server whose clock runs behind still accepts the JWT. */
export const CLOCK_SKEW_SECONDS = 30;

/** Longest `expiresInSeconds` accepted: assertions are meant to be short-lived. */
const MAX_EXPIRES_IN_SECONDS = 86_400;

/** Claims Outpost sets from other settings; `claims` may not give them. */
const COMPUTED_CLAIMS = ['iat', 'exp'];

/** The settings of an `oauth2-jwt` account, defaults applied. */
export interface JwtOptions {
  tokenUrl: URL;
  expiresInSeconds: number;
  contentType: (typeof JWT_CONTENT_TYPES)[number];
  claims: Record<string, unknown>;
  algorithm: JwtAlgorithm;
  keyId: string | undefined;
  bodyParams: Record<string, string>;
  accessTokenKey: string;
  requestHeaders: Record<string, string>;
}

function invalid(field: string, message: string): never {
  throw new OutpostError('INVALID_SETTING', `${field} ${message}`, { field });
}

function readClaims(settings: FieldMap): Record<string, unknown> {
  const claims = settings.claims;
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) {
    invalid('settings.claims', 'must be an object with at least iss, aud and scope');
  }
  const map = claims as Record<string, unknown>;
  for (const name of ['iss', 'scope']) {
    if (typeof map[name] !== 'string' || map[name] === '') {
      invalid(`settings.claims.${name}`, 'is required and must be a non-empty string');
    }
  }
  const aud = map.aud;
  const audOk =
    (typeof aud === 'string' && aud !== '') ||
    (Array.isArray(aud) && aud.length > 0 && aud.every((a) => typeof a === 'string' && a !== ''));
  if (!audOk) invalid('settings.claims.aud', 'is required: a string or an array of strings');
  if (map.sub !== undefined && (typeof map.sub !== 'string' || map.sub === '')) {
    invalid('settings.claims.sub', 'must be a non-empty string');
  }
  for (const name of COMPUTED_CLAIMS) {
    if (Object.hasOwn(map, name)) invalid(`settings.claims.${name}`, 'is set by Outpost');
  }
  return map;
}

function readExpiresIn(settings: FieldMap): number {
  const value = settings.expiresInSeconds ?? 3600;
  if (
    typeof value !== 'number' ||
    !Number.isInteger(value) ||
    value < 1 ||
    value > MAX_EXPIRES_IN_SECONDS
  ) {
    invalid('settings.expiresInSeconds', `must be an integer from 1 to ${MAX_EXPIRES_IN_SECONDS}`);
  }
  return value;
}

/** Checks the settings of an `oauth2-jwt` account and applies the defaults. */
export function jwtOptions(settings: FieldMap): JwtOptions {
  const bodyParams = readParamMap(settings, 'bodyParams', 'settings') ?? { ...DEFAULT_BODY_PARAMS };
  if (!Object.values(bodyParams).some((v) => v.includes(JWT_PLACEHOLDER))) {
    invalid('settings.bodyParams', `must use ${JWT_PLACEHOLDER} in at least one value`);
  }
  const keyId = optionalString(settings, 'keyId', 'settings');
  return {
    tokenUrl: readHttpUrl(settings.tokenUrl, 'settings.tokenUrl'),
    expiresInSeconds: readExpiresIn(settings),
    contentType: readEnum(settings, 'contentType', JWT_CONTENT_TYPES, 'form'),
    claims: readClaims(settings),
    algorithm: readEnum(settings, 'algorithm', JWT_ALGORITHMS, 'RS256'),
    keyId: keyId === '' ? undefined : keyId,
    bodyParams,
    accessTokenKey: optionalString(settings, 'accessTokenKey', 'settings') || 'access_token',
    requestHeaders: readRequestHeaders(settings),
  };
}

interface Compiled {
  options: JwtOptions;
  key: KeyObject;
}

/** Options and key compiled once per account object (accounts are replaced on change). */
const compiled = new WeakMap<ResolvedAccount, Compiled>();

function compiledOf(account: ResolvedAccount): Compiled {
  let entry = compiled.get(account);
  if (!entry) {
    const options = jwtOptions(account.settings);
    entry = { options, key: loadSigningKey(account.secrets.privateKeyPem, options.algorithm) };
    compiled.set(account, entry);
  }
  return entry;
}

/** Signs the assertion: the claims, a fresh `jti` unless given, `iat` and `exp`. */
export async function signAssertion(
  options: JwtOptions,
  key: KeyObject,
  nowMs: number,
): Promise<string> {
  const iat = Math.floor(nowMs / 1000) - CLOCK_SKEW_SECONDS;
  const header = {
    alg: options.algorithm,
    typ: 'JWT',
    ...(options.keyId ? { kid: options.keyId } : {}),
  };
  return (
    new SignJWT({ jti: randomUUID(), ...options.claims })
      .setProtectedHeader(header)
      .setIssuedAt(iat)
      // exp counts from iat so that exp - iat is exactly expiresInSeconds: servers that cap an
      // assertion's lifetime (often at one hour) compare those two.
      .setExpirationTime(iat + options.expiresInSeconds)
      .sign(key)
  );
}

async function fetchToken(ctx: AuthContext): Promise<TokenAnswer> {
  const { options, key } = compiledOf(ctx.account);
  const jwt = await signAssertion(options, key, ctx.now());
  registerSecret(jwt);
  const params: Record<string, string> = {};
  for (const [name, value] of Object.entries(options.bodyParams)) {
    params[name] = value.split(JWT_PLACEHOLDER).join(jwt);
  }
  const json = options.contentType === 'json';
  const res = await ctx.authRequest({
    method: 'POST',
    url: new URL(options.tokenUrl),
    headers: {
      accept: 'application/json',
      'content-type': json ? 'application/json' : 'application/x-www-form-urlencoded',
    },
    body: Buffer.from(json ? JSON.stringify(params) : new URLSearchParams(params).toString()),
  });
  return readTokenAnswer(
    res,
    { accessTokenKey: options.accessTokenKey },
    `the oauth2-jwt token endpoint ${options.tokenUrl.origin}`,
  );
}

const source: TokenSource = {
  name: 'oauth2-jwt',
  fingerprint(account) {
    const { settings } = account;
    return fingerprintOf([
      settings.tokenUrl,
      settings.claims,
      settings.bodyParams ?? null,
      settings.algorithm ?? null,
      settings.keyId ?? null,
      account.secrets.privateKeyPem,
    ]);
  },
  given: () => undefined,
  fetch: (ctx) => fetchToken(ctx),
};

const cache = new TokenCache(source);

/** The `oauth2-jwt` auth type. */
export const oauth2JwtAuth: AuthHandler = {
  secretFields: ['privateKeyPem'],
  check(settings, secrets, secretsKnown) {
    const options = jwtOptions(settings);
    if (secretsKnown) loadSigningKey(secrets.privateKeyPem, options.algorithm);
    return { settings, secrets, warnings: [] };
  },
  async apply(req, ctx) {
    const { options } = compiledOf(ctx.account);
    applyRequestHeaders(req.headers, options.requestHeaders, await cache.tokenFor(req, ctx));
  },
  onUnauthorized(req, ctx) {
    return cache.renewAfterUnauthorized(req, ctx);
  },
  extraOrigins(account) {
    return [new URL(jwtOptions(account.settings).tokenUrl)];
  },
};
