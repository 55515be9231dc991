/**
 * A small cookie jar after RFC 6265 for the `cookie` auth type: parses every Set-Cookie of a
 * login, honours Path, Domain, Secure, Expires and Max-Age, and builds the Cookie header of a
 * request. Its cookies are plain JSON so that they can be kept in `ctx.state`.
 */
import { isIP } from 'node:net';

/** One stored cookie. */
export interface StoredCookie {
  name: string;
  value: string;
  /** Lower case, without a leading dot. */
  domain: string;
  /** True when no Domain attribute was given: only that exact host gets it. */
  hostOnly: boolean;
  path: string;
  secure: boolean;
  /** Milliseconds; null for a session cookie (kept until the next login). */
  expiresAt: number | null;
}

const NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// eslint-disable-next-line no-control-regex
const BAD_VALUE = /[\u0000-\u001f\u007f;]/;

/** The default path of RFC 6265 5.1.4: the request path up to its last "/". */
function defaultPath(url: URL): string {
  const path = url.pathname;
  const last = path.lastIndexOf('/');
  return last <= 0 ? '/' : path.slice(0, last);
}

/** True when `host` domain-matches `domain` (RFC 6265 5.1.3). */
function domainMatches(host: string, domain: string): boolean {
  if (host === domain) return true;
  return !isIP(host) && host.endsWith(`.${domain}`);
}

/** True when the request path path-matches the cookie path (RFC 6265 5.1.4). */
function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}

function hostOf(url: URL): string {
  const host = url.hostname.toLowerCase();
  return host.startsWith('[') ? host.slice(1, -1) : host;
}

/**
 * Parses one Set-Cookie value received from `url` at `now`. Returns undefined when the cookie
 * must be ignored (malformed, or for a domain the host may not set); an expired result means
 * "delete".
 */
export function parseSetCookie(header: string, url: URL, now: number): StoredCookie | undefined {
  const [pair = '', ...attributes] = header.split(';');
  const eq = pair.indexOf('=');
  if (eq <= 0) return undefined;
  const name = pair.slice(0, eq).trim();
  const value = pair.slice(eq + 1).trim();
  if (!NAME.test(name) || BAD_VALUE.test(value)) return undefined;

  const host = hostOf(url);
  const cookie: StoredCookie = {
    name,
    value,
    domain: host,
    hostOnly: true,
    path: defaultPath(url),
    secure: false,
    expiresAt: null,
  };
  let maxAge: number | undefined;
  let expires: number | undefined;
  for (const attribute of attributes) {
    const sep = attribute.indexOf('=');
    const key = (sep === -1 ? attribute : attribute.slice(0, sep)).trim().toLowerCase();
    const arg = sep === -1 ? '' : attribute.slice(sep + 1).trim();
    if (key === 'path' && arg.startsWith('/')) cookie.path = arg;
    else if (key === 'secure') cookie.secure = true;
    else if (key === 'max-age' && /^-?\d+$/.test(arg)) maxAge = Number(arg);
    else if (key === 'expires' && !Number.isNaN(Date.parse(arg))) expires = Date.parse(arg);
    else if (key === 'domain' && arg !== '') {
      const domain = arg.replace(/^\./, '').toLowerCase();
      // A host may set cookies for itself or a parent domain, never for another host.
      if (!domainMatches(host, domain)) return undefined;
      cookie.domain = domain;
      cookie.hostOnly = false;
    }
  }
  // Max-Age wins over Expires (RFC 6265 5.3 step 3).
  if (maxAge !== undefined) cookie.expiresAt = maxAge <= 0 ? 0 : now + maxAge * 1000;
  else if (expires !== undefined) cookie.expiresAt = expires;
  return cookie;
}

/** True when the cookie has expired at `now`. */
export function isExpired(cookie: StoredCookie, now: number): boolean {
  return cookie.expiresAt !== null && cookie.expiresAt <= now;
}

/** Adds the cookies of one answer to a jar: a cookie replaces one of the same name, domain and path. */
export function storeCookies(
  jar: StoredCookie[],
  setCookies: readonly string[],
  url: URL,
  now: number,
): StoredCookie[] {
  let out = [...jar];
  for (const header of setCookies) {
    const cookie = parseSetCookie(header, url, now);
    if (!cookie) continue;
    out = out.filter(
      (c) => !(c.name === cookie.name && c.domain === cookie.domain && c.path === cookie.path),
    );
    // An already expired cookie only deletes the one it replaces.
    if (!isExpired(cookie, now)) out.push(cookie);
  }
  return out;
}

/** The Cookie header for a request to `url`, longest paths first; undefined when none match. */
export function cookieHeader(
  jar: readonly StoredCookie[],
  url: URL,
  now: number,
): string | undefined {
  const host = hostOf(url);
  const matching = jar.filter(
    (c) =>
      !isExpired(c, now) &&
      (c.hostOnly ? c.domain === host : domainMatches(host, c.domain)) &&
      pathMatches(url.pathname, c.path) &&
      (!c.secure || url.protocol === 'https:'),
  );
  if (matching.length === 0) return undefined;
  // Array.prototype.sort is stable: equal paths keep the order in which they were set.
  matching.sort((a, b) => b.path.length - a.path.length);
  return matching.map((c) => `${c.name}=${c.value}`).join('; ');
}

/** Reads a jar back from state, dropping anything malformed. */
export function readJar(value: unknown): StoredCookie[] {
  if (!Array.isArray(value)) return [];
  return value.filter(
    (c): c is StoredCookie =>
      c !== null &&
      typeof c === 'object' &&
      typeof (c as StoredCookie).name === 'string' &&
      typeof (c as StoredCookie).value === 'string' &&
      typeof (c as StoredCookie).domain === 'string' &&
      typeof (c as StoredCookie).hostOnly === 'boolean' &&
      typeof (c as StoredCookie).path === 'string' &&
      typeof (c as StoredCookie).secure === 'boolean' &&
      ((c as StoredCookie).expiresAt === null || typeof (c as StoredCookie).expiresAt === 'number'),
  );
}
