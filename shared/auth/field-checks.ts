/**
 * Checks of settings fields shared by the token-based auth types: enums that list their accepted
 * values, absolute http(s) URLs, header maps and plain string maps.
 */
import type { FieldMap } from '../accounts.js';
import { OutpostError } from '../errors.js';
import { assertHeader, isForbiddenRequestHeader } from '../executor/headers.js';

function codeOf(kind: 'secrets' | 'settings'): 'INVALID_SECRET' | 'INVALID_SETTING' {
  return kind === 'secrets' ? 'INVALID_SECRET' : 'INVALID_SETTING';
}

/** Reads an optional enum setting, or its default; the error lists the accepted values. */
export function readEnum<T extends string>(
  settings: FieldMap,
  key: string,
  accepted: readonly T[],
  fallback: T,
): T {
  const value = settings[key];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'string' || !(accepted as readonly string[]).includes(value)) {
    throw new OutpostError(
      'INVALID_SETTING',
      `settings.${key} must be one of: ${accepted.join(', ')}`,
      { field: `settings.${key}` },
    );
  }
  return value as T;
}

/** Reads an optional boolean setting. */
export function readBoolean(settings: FieldMap, key: string, fallback: boolean): boolean {
  const value = settings[key];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'boolean') {
    throw new OutpostError('INVALID_SETTING', `settings.${key} must be true or false`, {
      field: `settings.${key}`,
    });
  }
  return value;
}

/** Parses an absolute http(s) URL without user info or fragment. */
export function readHttpUrl(value: unknown, field: string): URL {
  let url: URL | undefined;
  if (typeof value === 'string' && value !== '') {
    try {
      url = new URL(value);
    } catch {
      url = undefined;
    }
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new OutpostError(
      'INVALID_SETTING',
      `${field} must be an absolute http:// or https:// URL`,
      {
        field,
      },
    );
  }
  if (url.username !== '' || url.password !== '' || url.hash !== '') {
    throw new OutpostError(
      'INVALID_SETTING',
      `${field} may not carry user info or a "#" fragment`,
      {
        field,
      },
    );
  }
  return url;
}

/**
 * Reads an optional object of header names and string values: names must be HTTP tokens,
 * values free of CR/LF/NUL, no name twice (case-insensitively), nothing that frames the request.
 * Returns the headers with lower-case names.
 */
export function readHeaderMap(
  map: FieldMap,
  key: string,
  kind: 'secrets' | 'settings',
): Record<string, string> | undefined {
  const value = map[key];
  if (value === undefined || value === null) return undefined;
  const field = `${kind}.${key}`;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new OutpostError(codeOf(kind), `${field} must be an object of header names and values`, {
      field,
    });
  }
  const out: Record<string, string> = {};
  for (const [name, headerValue] of Object.entries(value as Record<string, unknown>)) {
    const at = `${field}.${name}`;
    if (typeof headerValue !== 'string') {
      throw new OutpostError(codeOf(kind), `${at} must be a string`, { field: at });
    }
    try {
      assertHeader(name, headerValue, at);
    } catch (err) {
      throw new OutpostError(codeOf(kind), (err as Error).message, { field: at }, err);
    }
    const lower = name.toLowerCase();
    if (isForbiddenRequestHeader(lower)) {
      throw new OutpostError(codeOf(kind), `${at}: Outpost frames the request itself`, {
        field: at,
      });
    }
    if (Object.hasOwn(out, lower)) {
      throw new OutpostError(codeOf(kind), `${at} is given twice`, { field: at });
    }
    out[lower] = headerValue;
  }
  return out;
}

/** Reads an optional object of parameters with string, number or boolean values, as strings. */
export function readParamMap(
  map: FieldMap,
  key: string,
  kind: 'secrets' | 'settings',
): Record<string, string> | undefined {
  const value = map[key];
  if (value === undefined || value === null) return undefined;
  const field = `${kind}.${key}`;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new OutpostError(codeOf(kind), `${field} must be an object of names and values`, {
      field,
    });
  }
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      throw new OutpostError(codeOf(kind), `${field}.${name} must be a string, number or boolean`, {
        field: `${field}.${name}`,
      });
    }
    out[name] = String(v);
  }
  return out;
}
