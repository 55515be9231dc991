/**
 * `requestHeaders` of the token-based auth types: header values in which `{{token}}` stands for
 * the current access token. The default sends `Authorization: Bearer {{token}}` whatever case
 * the token endpoint gave its `token_type` in, since many resource servers only accept `Bearer`.
 */
import type { FieldMap } from '../accounts.js';
import { OutpostError } from '../errors.js';
import { readHeaderMap } from './field-checks.js';

/** The placeholder of the access token in a header value. */
export const TOKEN_PLACEHOLDER = '{{token}}';

/** The default `requestHeaders`. */
export const DEFAULT_REQUEST_HEADERS: Readonly<Record<string, string>> = {
  authorization: `Bearer ${TOKEN_PLACEHOLDER}`,
};

/** Reads `settings.requestHeaders` (lower-case names) or the default; one value must use the token. */
export function readRequestHeaders(settings: FieldMap): Record<string, string> {
  const headers = readHeaderMap(settings, 'requestHeaders', 'settings');
  if (headers === undefined) return { ...DEFAULT_REQUEST_HEADERS };
  if (!Object.values(headers).some((v) => v.includes(TOKEN_PLACEHOLDER))) {
    throw new OutpostError(
      'INVALID_SETTING',
      `settings.requestHeaders must use ${TOKEN_PLACEHOLDER} in at least one value`,
      { field: 'settings.requestHeaders' },
    );
  }
  return headers;
}

/** Sets the templated headers on a request, the token substituted. */
export function applyRequestHeaders(
  target: Record<string, string>,
  template: Record<string, string>,
  token: string,
): void {
  for (const [name, value] of Object.entries(template)) {
    target[name] = value.split(TOKEN_PLACEHOLDER).join(token);
  }
}
