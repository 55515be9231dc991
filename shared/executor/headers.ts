/** Checks on request headers from jobs and normalization of response headers. */
import { OutpostError } from '../errors.js';

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Headers a job may not set: they frame the request or steer proxies and connections. */
const FORBIDDEN_REQUEST_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'upgrade',
  'keep-alive',
  'te',
  'trailer',
  'expect',
]);

/** Hop-by-hop headers removed from answers (RFC 9110 section 7.6.1). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** True for headers that neither a job nor an account's secrets may set (framing, proxies). */
export function isForbiddenRequestHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return FORBIDDEN_REQUEST_HEADERS.has(lower) || lower.startsWith('proxy-');
}

/**
 * Throws INVALID_HEADER unless the name is an HTTP token and the value holds only HTAB and
 * visible Latin-1 (0x20-0x7E, 0x80-0xFF): the HTTP client refuses anything else when it sends,
 * so such a value is refused when the job or account is created, not at run time.
 */
export function assertHeader(name: string, value: string, field = `headers.${name}`): void {
  if (!TOKEN.test(name)) {
    throw new OutpostError('INVALID_HEADER', `header name "${name}" is not a valid HTTP token`, {
      field,
    });
  }
  if (/[^\t\x20-\x7e\x80-\xff]/.test(value)) {
    throw new OutpostError(
      'INVALID_HEADER',
      `header "${name}" may hold only tabs and visible Latin-1 characters` +
        ' (no CR, LF, NUL, control characters or characters above U+00FF)',
      { field },
    );
  }
}

/** Validates the headers of a job: valid names and values, nothing that frames the request. */
export function checkJobHeaders(
  headers: Record<string, string> | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    const lower = name.toLowerCase();
    assertHeader(name, value, `request.headers.${name}`);
    if (isForbiddenRequestHeader(name)) {
      throw new OutpostError(
        'INVALID_HEADER',
        `header "${name}" may not be set by a job: Outpost frames the request itself`,
        { field: `request.headers.${name}` },
      );
    }
    if (Object.hasOwn(out, lower)) {
      throw new OutpostError('INVALID_HEADER', `header "${name}" is given twice`, {
        field: `request.headers.${name}`,
      });
    }
    out[lower] = value;
  }
  return out;
}

/** Response headers as the API returns them: lower-case names, arrays for repeats. */
export type ResponseHeaders = Record<string, string | string[]>;

/** Lower-cases names, drops hop-by-hop headers, makes `set-cookie` always an array. */
export function normalizeResponseHeaders(
  raw: Record<string, string | string[] | undefined>,
): ResponseHeaders {
  const named = new Set<string>();
  const connection = raw.connection ?? raw.Connection;
  for (const v of [connection].flat()) {
    for (const token of (v ?? '').split(',')) named.add(token.trim().toLowerCase());
  }
  const out: ResponseHeaders = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || named.has(lower)) continue;
    const prev = out[lower];
    const next = Array.isArray(value) ? value : [value];
    const all = prev === undefined ? next : [...[prev].flat(), ...next];
    out[lower] = all.length === 1 && lower !== 'set-cookie' ? all[0]! : all;
  }
  return out;
}

/** True when a content type is shown as text in `response.body` (text, JSON, XML, forms). */
export function isTextContentType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  return (
    type.startsWith('text/') ||
    type === 'application/json' ||
    type.endsWith('+json') ||
    type === 'application/xml' ||
    type.endsWith('+xml') ||
    type === 'application/x-www-form-urlencoded' ||
    type === 'application/javascript'
  );
}
