/**
 * The OAuth 1.0a signature of RFC 5849 section 3.4, built on the `oauth-1.0a` library for the
 * parts it gets right (percent-encoding, sorting, the signing key, the header) and with our own
 * parameter collection where it does not.
 */
import { createHmac } from 'node:crypto';

import OAuth from 'oauth-1.0a';

/** The signature methods of RFC 5849 section 3.4 that we accept. */
export const OAUTH1_SIGNATURE_METHODS = ['HMAC-SHA1', 'HMAC-SHA256', 'PLAINTEXT'] as const;

/** One accepted signature method. */
export type OAuth1SignatureMethod = (typeof OAUTH1_SIGNATURE_METHODS)[number];

/** Everything a signature depends on; nonce and timestamp are given so that tests can fix them. */
export interface OAuth1SignInput {
  method: string;
  url: URL;
  /** The body bytes when held in memory. */
  body: Buffer | undefined;
  /** The request's content-type header, if any. */
  contentType: string | undefined;
  consumerKey: string;
  consumerSecret: string;
  token?: string | undefined;
  tokenSecret?: string | undefined;
  signatureMethod: OAuth1SignatureMethod;
  realm?: string | undefined;
  timestamp: string;
  nonce: string;
  /** `oauth_version`; optional in RFC 5849, sent as "1.0" unless null. */
  version: string | null;
}

/** The signature with what went into it (the base string is for tests and debugging). */
export interface OAuth1Signature {
  baseString: string;
  signature: string;
  authorization: string;
}

const HMAC_ALGORITHMS: Record<OAuth1SignatureMethod, 'sha1' | 'sha256' | undefined> = {
  'HMAC-SHA1': 'sha1',
  'HMAC-SHA256': 'sha256',
  PLAINTEXT: undefined,
};

/** True when the content type is `application/x-www-form-urlencoded`, whatever its parameters. */
export function isFormContentType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const mediaType = contentType.split(';')[0]?.trim().toLowerCase();
  return mediaType === 'application/x-www-form-urlencoded';
}

/**
 * Signs a request. The library does the percent-encoding, the signing key and the header; the
 * parameters are collected and normalized here, because its own parsing is wrong for RFC 5849:
 * - `deParam` does not decode names (`c%40` would be encoded twice) and reads `+` as `+`, while
 *   section 3.4.1.3.1 decodes both query and form body as application/x-www-form-urlencoded;
 * - it cuts a value at a second `=` and loses a repeated name whose first value is empty;
 * - `mergeObject` lets a body parameter overwrite a query parameter of the same name, where the
 *   RFC keeps both (see the `a3` parameter of the RFC example);
 * - it keeps parameters in plain objects, so a parameter named `__proto__` vanishes, and
 *   `getParameterString` copies request parameters into the oauth data that `toHeader` prints.
 * Realm stays out of the signature (section 3.4.1.3.1) but goes first in the header.
 */
export function signOAuth1(input: OAuth1SignInput): OAuth1Signature {
  const algorithm = HMAC_ALGORITHMS[input.signatureMethod];
  const oauth = new OAuth({
    consumer: { key: input.consumerKey, secret: input.consumerSecret },
    signature_method: input.signatureMethod,
    realm: input.realm,
    // PLAINTEXT signs with the key itself (section 3.4.4). The library encodes both secrets
    // before joining them with "&" (section 3.4.2), which is what we rely on here.
    hash_function: (base, key) =>
      algorithm === undefined ? key : createHmac(algorithm, key).update(base).digest('base64'),
  });

  const protocol: Record<string, string> = {
    oauth_consumer_key: input.consumerKey,
    oauth_nonce: input.nonce,
    oauth_signature_method: input.signatureMethod,
    oauth_timestamp: input.timestamp,
  };
  if (input.token !== undefined) protocol.oauth_token = input.token;
  if (input.version !== null) protocol.oauth_version = input.version;

  // Section 3.4.1.3: query, then a form body, then the protocol parameters; each decoded once
  // here and encoded once below.
  const pairs: Array<[string, string]> = [...new URLSearchParams(input.url.search)];
  if (input.body !== undefined && isFormContentType(input.contentType)) {
    pairs.push(...new URLSearchParams(input.body.toString('utf8')));
  }
  const encoded = pairs
    .filter(([name]) => name !== 'oauth_signature')
    .concat(Object.entries(protocol))
    .map(([name, value]) => [oauth.percentEncode(name), oauth.percentEncode(value)] as const)
    // Section 3.4.1.3.2: by name, then by value, in byte order (the strings are ASCII now).
    .sort(([n1, v1], [n2, v2]) => compare(n1, n2) || compare(v1, v2));
  const normalized = encoded.map(([name, value]) => `${name}=${value}`).join('&');

  // Section 3.4.1.2: lower-case scheme and host, no default port, no query, no fragment; the
  // WHATWG URL has already done all of that.
  const baseUri = `${input.url.origin}${input.url.pathname}`;
  const baseString = [
    input.method.toUpperCase(),
    oauth.percentEncode(baseUri),
    oauth.percentEncode(normalized),
  ].join('&');
  const signature = oauth.hash_function(baseString, oauth.getSigningKey(input.tokenSecret));
  const header = oauth.toHeader({
    ...protocol,
    oauth_signature: signature,
  } as unknown as OAuth.Authorization);
  return { baseString, signature, authorization: header.Authorization };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
