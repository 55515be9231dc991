/**
 * Builds the target URL of a job from the account's host and port and the request's path and
 * query, exactly as API.md says. Nothing in `path` can change the scheme, host or port.
 */
import { OutpostError } from '../errors.js';

/** A query value: a scalar, or an array of them for a repeated key. */
export type QueryValue = string | number | boolean | Array<string | number | boolean>;

/** The parsed base of an account: scheme, host, port and base path. */
export interface AccountBase {
  protocol: 'http:' | 'https:';
  hostname: string;
  port: number;
  basePath: string;
}

const SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;

/** Parses an account's `host` (with or without scheme, port and base path) and `port`. */
export function parseAccountBase(host: string, port: number | null | undefined): AccountBase {
  // Whitespace or a control character anywhere, even at an end, is refused rather than trimmed:
  // the stored host is the one the agent connects to and the one people read.
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f-\u009f]/.test(host) && host.trim() !== '') {
    throw new OutpostError(
      'INVALID_TARGET',
      'host may not contain spaces, tabs, line breaks or control characters',
      { field: 'host' },
    );
  }
  const raw = host.trim();
  if (raw === '')
    throw new OutpostError('INVALID_TARGET', 'host is empty: give a host name', { field: 'host' });
  if (/[\s#?\\]/.test(raw)) {
    throw new OutpostError('INVALID_TARGET', 'host may not contain spaces, "#", "?" or "\\"', {
      field: 'host',
    });
  }
  const schemeMatch = SCHEME.exec(raw);
  const scheme = schemeMatch?.[1]?.toLowerCase();
  if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') {
    throw new OutpostError('INVALID_TARGET', `host has scheme "${scheme}": use http or https`, {
      field: 'host',
    });
  }
  // A scheme without default ports keeps an explicit :80 or :443 visible to us.
  let parsed: URL;
  try {
    parsed = new URL(`outpost-base://${schemeMatch ? raw.slice(schemeMatch[0].length) : raw}`);
  } catch (err) {
    throw new OutpostError(
      'INVALID_TARGET',
      `host "${raw}" is not a valid host name`,
      { field: 'host' },
      err,
    );
  }
  if (parsed.username || parsed.password) {
    throw new OutpostError(
      'INVALID_TARGET',
      'host may not carry user info: use the auth settings',
      { field: 'host' },
    );
  }
  if (parsed.hostname === '') {
    throw new OutpostError('INVALID_TARGET', `host "${raw}" has no host name`, { field: 'host' });
  }
  const hostPort = parsed.port === '' ? undefined : Number(parsed.port);
  if (port !== null && port !== undefined) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new OutpostError('INVALID_TARGET', 'port must be an integer from 1 to 65535', {
        field: 'port',
      });
    }
    if (hostPort !== undefined && hostPort !== port) {
      throw new OutpostError(
        'INVALID_TARGET',
        `host says port ${hostPort} but port says ${port}: give one of them, or the same`,
        { field: 'port' },
      );
    }
  }
  const explicitPort = port ?? hostPort;
  let protocol: 'http:' | 'https:';
  if (scheme) protocol = `${scheme}:`;
  else protocol = explicitPort === 80 ? 'http:' : 'https:';
  const finalPort = explicitPort ?? (protocol === 'http:' ? 80 : 443);
  // Normalize the host name the way HTTP URLs do (lower case, IDNA, IPv6 brackets).
  const check = new URL(`${protocol}//${parsed.host}`);
  let basePath = parsed.pathname === '' ? '/' : parsed.pathname;
  if (!basePath.endsWith('/')) basePath += '/';
  return { protocol, hostname: check.hostname, port: finalPort, basePath };
}

/** The origin of a base, e.g. `https://api.internal:8443`. */
export function baseOrigin(base: AccountBase): string {
  const defaultPort = base.protocol === 'http:' ? 80 : 443;
  return `${base.protocol}//${base.hostname}${base.port === defaultPort ? '' : `:${base.port}`}`;
}

/** Percent-encodes per RFC 3986: everything but the unreserved set. */
export function encodeRfc3986(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** Encodes a query object, keeping key order, repeating a key for array values. */
export function encodeQuery(query: Record<string, QueryValue> | undefined): string {
  if (!query) return '';
  const parts: string[] = [];
  for (const [key, value] of Object.entries(query)) {
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) parts.push(`${encodeRfc3986(key)}=${encodeRfc3986(String(v))}`);
  }
  return parts.join('&');
}

/** Builds the full target URL of a request against a base. */
export function buildTargetUrl(
  base: AccountBase,
  path: string | undefined,
  query?: Record<string, QueryValue>,
): URL {
  const rawPath = path ?? '';
  if (rawPath.includes('#')) {
    throw new OutpostError('INVALID_TARGET', 'path may not contain "#"', { field: 'request.path' });
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(rawPath)) {
    throw new OutpostError('INVALID_TARGET', 'path may not contain control characters', {
      field: 'request.path',
    });
  }
  const q = rawPath.indexOf('?');
  const pathPart = (q === -1 ? rawPath : rawPath.slice(0, q)).replace(/^[/\\]+/, '');
  const pathQuery = q === -1 ? '' : rawPath.slice(q + 1);
  assertNoClimb(pathPart);
  const origin = baseOrigin(base);
  const url = new URL(`${origin}${base.basePath}${pathPart}`);
  // The WHATWG parser resolves "..", "%2e%2e" and "\" segments; whatever remains must still sit
  // under the base path on the same origin.
  if (url.origin !== new URL(origin).origin) {
    throw new OutpostError('INVALID_TARGET', 'path may not change the scheme, host or port', {
      field: 'request.path',
    });
  }
  const baseDir = base.basePath;
  if (!(url.pathname + '/').startsWith(baseDir) && url.pathname !== baseDir.slice(0, -1)) {
    throw new OutpostError('INVALID_TARGET', `path climbs above the base path ${baseDir}`, {
      field: 'request.path',
    });
  }
  const extra = encodeQuery(query);
  const search = [pathQuery, extra].filter((s) => s !== '').join('&');
  url.search = search === '' ? '' : `?${search}`;
  return url;
}

/**
 * Refuses `..` segments that climb above the base path, as `%2e%2e` or with backslashes too.
 * The URL parser would silently stop at the root instead; a request that asks to climb is a
 * mistake or an attack, and either way it gets a clear error.
 */
function assertNoClimb(relativePath: string): void {
  let depth = 0;
  for (const raw of relativePath.split(/[/\\]/)) {
    const segment = raw.replace(/%2e/gi, '.');
    if (segment === '.') continue;
    if (segment === '..') depth--;
    else depth++;
    if (depth < 0) {
      throw new OutpostError('INVALID_TARGET', 'path climbs above the base path with ".."', {
        field: 'request.path',
      });
    }
  }
}
