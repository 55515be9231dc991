/**
 * `cookie`: a session cookie. A cookie given in the secrets is sent as is; otherwise, and after a
 * 401, Outpost logs in at `loginPath` with `loginBody`, keeps every cookie the login sets in a
 * jar (cookie-jar.ts) stored in `ctx.state`, sends the cookies that match each request, and
 * retries once. Only the login answer is read: cookies that the target sets on ordinary answers
 * are not captured, since the executor does not show those answers to auth types.
 */
import { randomUUID } from 'node:crypto';

import type { FieldMap, ResolvedAccount } from '../accounts.js';
import { OutpostError } from '../errors.js';
import { registerSecret } from '../logger.js';
import { baseOrigin, buildTargetUrl, parseAccountBase } from '../executor/target-url.js';
import { assertNoLineBreaks, optionalString } from './common-settings.js';
import { cookieHeader, isExpired, readJar, storeCookies, type StoredCookie } from './cookie-jar.js';
import { readEnum, readHttpUrl } from './field-checks.js';
import { SingleFlight } from './single-flight.js';
import { fingerprintOf } from './token-cache.js';
import type { AuthContext, AuthHandler, OutgoingRequest } from './types.js';

/** Accepted `loginMethod` values. */
export const COOKIE_LOGIN_METHODS = ['POST', 'PUT', 'PATCH'] as const;
/** Accepted `loginContentType` values. */
export const COOKIE_LOGIN_CONTENT_TYPES = ['json', 'form'] as const;

const STATE_VERSION = 1;

/** The settings of a `cookie` account, defaults applied. */
export interface CookieOptions {
  loginPath: string | undefined;
  loginMethod: (typeof COOKIE_LOGIN_METHODS)[number];
  loginContentType: (typeof COOKIE_LOGIN_CONTENT_TYPES)[number];
}

/** A jar as stored, with the id of the login that filled it. */
interface Session {
  loginId: string;
  cookies: StoredCookie[];
}

/** Checks the settings of a `cookie` account and applies the defaults. */
export function cookieOptions(settings: FieldMap): CookieOptions {
  const loginPath = optionalString(settings, 'loginPath', 'settings');
  if (loginPath !== undefined && !loginPath.startsWith('/')) {
    readHttpUrl(loginPath, 'settings.loginPath');
  }
  return {
    loginPath: loginPath === '' ? undefined : loginPath,
    loginMethod: readEnum(settings, 'loginMethod', COOKIE_LOGIN_METHODS, 'POST'),
    loginContentType: readEnum(settings, 'loginContentType', COOKIE_LOGIN_CONTENT_TYPES, 'json'),
  };
}

/**
 * The login URL: a path resolves under the account's base like a job's path; an absolute URL
 * must have the account's origin, so that the login body never goes to another host.
 */
export function loginUrl(account: ResolvedAccount, loginPath: string): URL {
  const base = parseAccountBase(account.host, account.port);
  if (loginPath.startsWith('/')) return buildTargetUrl(base, loginPath);
  const url = readHttpUrl(loginPath, 'settings.loginPath');
  if (url.origin !== new URL(baseOrigin(base)).origin) {
    throw new OutpostError(
      'INVALID_SETTING',
      `settings.loginPath must be on the account's host (${baseOrigin(base)}), not ${url.origin}`,
      { field: 'settings.loginPath' },
    );
  }
  return url;
}

/** Encodes `loginBody` for the content type; a string is sent as it is. */
export function encodeLoginBody(
  body: unknown,
  contentType: CookieOptions['loginContentType'],
): string {
  if (typeof body === 'string') return body;
  if (contentType === 'json') return JSON.stringify(body);
  const ok =
    body !== null &&
    typeof body === 'object' &&
    !Array.isArray(body) &&
    Object.values(body).every((v) => ['string', 'number', 'boolean'].includes(typeof v));
  if (!ok) {
    throw new OutpostError(
      'INVALID_SECRET',
      'secrets.loginBody must be a string or an object of strings, numbers and booleans for form',
      { field: 'secrets.loginBody' },
    );
  }
  const entries = Object.entries(body as Record<string, string | number | boolean>);
  return new URLSearchParams(entries.map(([k, v]): [string, string] => [k, String(v)])).toString();
}

function canLogIn(account: ResolvedAccount, options: CookieOptions): boolean {
  return options.loginPath !== undefined && account.secrets.loginBody !== undefined;
}

function fingerprint(account: ResolvedAccount): string {
  const { settings, secrets } = account;
  return fingerprintOf([
    account.host,
    account.port,
    settings.loginPath ?? null,
    secrets.loginBody ?? null,
    secrets.cookie ?? null,
  ]);
}

function loadSession(ctx: AuthContext): Session | undefined {
  const state = ctx.state.get(ctx.account.id);
  if (!state || state.version !== STATE_VERSION || state.fingerprint !== fingerprint(ctx.account)) {
    return undefined;
  }
  if (typeof state.loginId !== 'string') return undefined;
  const cookies = readJar(state.cookies);
  for (const c of cookies) registerSecret(c.value);
  return { loginId: state.loginId, cookies };
}

function setCookiesOf(headers: Record<string, string | string[]>): string[] {
  const value = headers['set-cookie'];
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

async function logIn(ctx: AuthContext): Promise<Session> {
  const options = cookieOptions(ctx.account.settings);
  const url = loginUrl(ctx.account, options.loginPath!);
  const json = options.loginContentType === 'json';
  const body = encodeLoginBody(ctx.account.secrets.loginBody, options.loginContentType);
  ctx.logger.debug('logging in for a session cookie', {
    accountId: ctx.account.id,
    origin: url.origin,
  });
  const now = ctx.now();
  const res = await ctx.authRequest({
    method: options.loginMethod,
    url,
    headers: { 'content-type': json ? 'application/json' : 'application/x-www-form-urlencoded' },
    body: Buffer.from(body, 'utf8'),
  });
  // Login forms often answer with a redirect; only an error status means failure.
  if (res.status >= 400) {
    throw new OutpostError(
      'AUTH_FLOW_FAILED',
      `the login at ${url.origin} answered ${res.status}`,
      {
        status: res.status,
      },
    );
  }
  const cookies = storeCookies([], setCookiesOf(res.headers), url, now);
  if (cookies.length === 0) {
    throw new OutpostError(
      'AUTH_FLOW_FAILED',
      `the login at ${url.origin} answered ${res.status} without setting a usable cookie`,
    );
  }
  for (const c of cookies) registerSecret(c.value);
  const session: Session = { loginId: randomUUID(), cookies };
  ctx.state.set(ctx.account.id, {
    version: STATE_VERSION,
    fingerprint: fingerprint(ctx.account),
    loginId: session.loginId,
    cookies,
  });
  ctx.logger.info('logged in for a session cookie', {
    accountId: ctx.account.id,
    cookieCount: cookies.length,
  });
  return session;
}

const logins = new SingleFlight<Session>();
/** The login whose cookies each request carried, to tell a stale 401 from a fresh one. */
const sentWith = new WeakMap<OutgoingRequest, string | undefined>();

/** Logs in once for all waiting requests, unless another login happened since `stale`. */
function freshSession(ctx: AuthContext, stale: string | undefined): Promise<Session> {
  return logins.run(ctx.account.id, async () => {
    const current = loadSession(ctx);
    const alive = current?.cookies.some((c) => !isExpired(c, ctx.now())) ?? false;
    if (current && alive && current.loginId !== stale) return current;
    return logIn(ctx);
  });
}

function hasLiveCookie(session: Session | undefined, now: number): boolean {
  return session?.cookies.some((c) => !isExpired(c, now)) ?? false;
}

/** The `cookie` auth type. */
export const cookieAuth: AuthHandler = {
  secretFields: ['cookie', 'loginBody'],
  check(settings, secrets, secretsKnown) {
    const options = cookieOptions(settings);
    if (secretsKnown) {
      const cookie = optionalString(secrets, 'cookie', 'secrets');
      if (cookie !== undefined) assertNoLineBreaks(cookie, 'secrets.cookie', 'secrets');
      if (secrets.loginBody !== undefined)
        encodeLoginBody(secrets.loginBody, options.loginContentType);
      if (!cookie && secrets.loginBody === undefined) {
        throw new OutpostError(
          'INVALID_SECRET',
          'give secrets.cookie, or secrets.loginBody to log in',
          {
            field: 'secrets.loginBody',
          },
        );
      }
      if (!cookie && options.loginPath === undefined) {
        throw new OutpostError('INVALID_SETTING', 'settings.loginPath is required to log in', {
          field: 'settings.loginPath',
        });
      }
    }
    return { settings, secrets, warnings: [] };
  },
  async apply(req, ctx) {
    const options = cookieOptions(ctx.account.settings);
    const given = optionalString(ctx.account.secrets, 'cookie', 'secrets');
    let session = loadSession(ctx);
    // Log in ahead only when no cookie is known at all; otherwise a 401 says when it is needed.
    if (!hasLiveCookie(session, ctx.now()) && !given && canLogIn(ctx.account, options)) {
      session = await freshSession(ctx, session?.loginId);
    }
    const fromJar = session ? cookieHeader(session.cookies, req.url, ctx.now()) : undefined;
    const value = fromJar ?? (given || undefined);
    sentWith.set(req, fromJar !== undefined ? session?.loginId : undefined);
    if (value === undefined) return;
    req.headers.cookie = req.headers.cookie ? `${req.headers.cookie}; ${value}` : value;
  },
  async onUnauthorized(req, ctx) {
    if (!canLogIn(ctx.account, cookieOptions(ctx.account.settings))) return false;
    await freshSession(ctx, sentWith.get(req));
    return true;
  },
};
