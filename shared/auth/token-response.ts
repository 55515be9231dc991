/**
 * Reads the answer of a token endpoint: the access token (and refresh token) at a configurable
 * key that may be a dotted path (`data.token`), and `expires_in`. Failures become
 * AUTH_FLOW_FAILED with the HTTP status and the server's `error` code only: descriptions and
 * bodies stay out of messages because some servers echo what they were sent.
 */
import { OutpostError } from '../errors.js';
import type { AuthHttpResponse } from './types.js';

/** What a token endpoint gave. */
export interface TokenAnswer {
  accessToken: string;
  /** Absent when the answer had none (the caller keeps the one it holds). */
  refreshToken?: string;
  /** Absent when the answer did not say. */
  expiresInSeconds?: number;
}

/** Where to find the tokens in the answer. */
export interface TokenKeys {
  accessTokenKey: string;
  refreshTokenKey?: string;
}

/** An OAuth `error` code is short ASCII; anything else is not repeated. */
const ERROR_CODE = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Looks a key up in a parsed answer: the literal key first, then as a dotted path. */
export function lookupKey(answer: unknown, key: string): unknown {
  if (answer === null || typeof answer !== 'object') return undefined;
  const record = answer as Record<string, unknown>;
  if (Object.hasOwn(record, key)) return record[key];
  let node: unknown = answer;
  for (const part of key.split('.')) {
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, part)) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

function parseBody(res: AuthHttpResponse): unknown {
  const contentType = String(res.headers['content-type'] ?? '').toLowerCase();
  const text = res.body.toString('utf8');
  // A few servers (GitHub among them) answer form-encoded unless asked for JSON.
  if (contentType.startsWith('application/x-www-form-urlencoded')) {
    return Object.fromEntries(new URLSearchParams(text));
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function readExpiresIn(answer: unknown, accessTokenKey: string): number | undefined {
  // `expires_in` sits beside the token when the token is nested, else at the top.
  const dot = accessTokenKey.lastIndexOf('.');
  const parent = dot > 0 ? lookupKey(answer, accessTokenKey.slice(0, dot)) : undefined;
  const raw = lookupKey(parent, 'expires_in') ?? lookupKey(answer, 'expires_in');
  const seconds = typeof raw === 'string' && /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw;
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0
    ? seconds
    : undefined;
}

function checkToken(value: unknown, what: string, endpoint: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  // The token ends up in a header: refuse anything a header cannot carry.
  if (typeof value !== 'string' || value === '' || /[\r\n\0]/.test(value)) {
    throw new OutpostError('AUTH_FLOW_FAILED', `${endpoint} answered with an unusable ${what}`);
  }
  return value;
}

/** Throws AUTH_FLOW_FAILED for a non-2xx answer, naming the status and the `error` code. */
export function assertTokenSuccess(res: AuthHttpResponse, endpoint: string): void {
  if (res.status >= 200 && res.status < 300) return;
  const code = lookupKey(parseBody(res), 'error');
  const suffix = typeof code === 'string' && ERROR_CODE.test(code) ? ` (error "${code}")` : '';
  throw new OutpostError('AUTH_FLOW_FAILED', `${endpoint} answered ${res.status}${suffix}`, {
    status: res.status,
    ...(suffix !== '' ? { error: code } : {}),
  });
}

/** Reads a token answer; throws AUTH_FLOW_FAILED when it failed or holds no access token. */
export function readTokenAnswer(
  res: AuthHttpResponse,
  keys: TokenKeys,
  endpoint: string,
): TokenAnswer {
  assertTokenSuccess(res, endpoint);
  const answer = parseBody(res);
  if (answer === null || typeof answer !== 'object') {
    throw new OutpostError(
      'AUTH_FLOW_FAILED',
      `${endpoint} answered ${res.status} without a JSON object`,
    );
  }
  const accessToken = checkToken(lookupKey(answer, keys.accessTokenKey), 'access token', endpoint);
  if (accessToken === undefined) {
    throw new OutpostError(
      'AUTH_FLOW_FAILED',
      `${endpoint} answered ${res.status} without "${keys.accessTokenKey}"`,
    );
  }
  const refreshToken = keys.refreshTokenKey
    ? checkToken(lookupKey(answer, keys.refreshTokenKey), 'refresh token', endpoint)
    : undefined;
  const expiresInSeconds = readExpiresIn(answer, keys.accessTokenKey);
  return {
    accessToken,
    ...(refreshToken !== undefined ? { refreshToken } : {}),
    ...(expiresInSeconds !== undefined ? { expiresInSeconds } : {}),
  };
}
