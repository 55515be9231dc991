import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { signOAuth1, type OAuth1SignInput } from '../../shared/auth/oauth1-signer.js';
import { vectorsDir } from '../helpers/vectors.js';

interface VectorCase {
  name: string;
  method: string;
  url: string;
  body: string | null;
  contentType: string | null;
  consumerKey: string;
  consumerSecret: string;
  token?: string;
  tokenSecret?: string;
  timestamp: string;
  nonce: string;
  version: string | null;
  realm?: string;
  baseString?: string;
  signature: string;
}

const vectorsFolder = vectorsDir();
const vectors = (
  vectorsFolder
    ? JSON.parse(readFileSync(join(vectorsFolder, 'oauth1.json'), 'utf8'))
    : { cases: [] }
) as { cases: VectorCase[] };

function input(overrides: Partial<OAuth1SignInput> = {}): OAuth1SignInput {
  return {
    method: 'GET',
    url: new URL('https://api.example.test/r'),
    body: undefined,
    contentType: undefined,
    consumerKey: 'ck',
    consumerSecret: 'cs',
    token: 'tk',
    tokenSecret: 'ts',
    signatureMethod: 'HMAC-SHA1',
    timestamp: '1700000000',
    nonce: 'n0nce',
    version: '1.0',
    ...overrides,
  };
}

/** The normalized parameter string: the third part of the base string, decoded once. */
function params(baseString: string): string {
  return decodeURIComponent(baseString.split('&')[2]!);
}

/** Tests on the published vectors skip where they are not laid out (never in CI). */
const vectorIt = vectorsFolder ? it : it.skip;

describe('the OAuth 1.0a signer', () => {
  vectorIt.each(vectors.cases.map((c) => [c.name, c] as const))(
    'matches the published signature of %s',
    (_name, c) => {
      const signed = signOAuth1({
        method: c.method,
        url: new URL(c.url),
        body: c.body === null ? undefined : Buffer.from(c.body, 'utf8'),
        contentType: c.contentType ?? undefined,
        consumerKey: c.consumerKey,
        consumerSecret: c.consumerSecret,
        token: c.token,
        tokenSecret: c.tokenSecret,
        signatureMethod: 'HMAC-SHA1',
        realm: c.realm,
        timestamp: c.timestamp,
        nonce: c.nonce,
        version: c.version,
      });
      if (c.baseString !== undefined) expect(signed.baseString).toBe(c.baseString);
      expect(signed.signature).toBe(c.signature);
    },
  );

  vectorIt('covers every case of the vector file', () => {
    expect(vectors.cases.length).toBeGreaterThanOrEqual(3);
  });

  it("percent-encodes everything but the unreserved set, !*'() included", () => {
    const signed = signOAuth1(
      input({ url: new URL("https://api.example.test/r?q=!*'()~-._%20x") }),
    );
    expect(params(signed.baseString)).toContain('q=%21%2A%27%28%29~-._%20x');
  });

  it('decodes query parameters once and encodes them once', () => {
    const signed = signOAuth1(
      input({ url: new URL('https://api.example.test/r?k%40y=%2520&p=a+b') }),
    );
    const normalized = params(signed.baseString);
    expect(normalized).toContain('k%40y=%2520');
    expect(normalized).toContain('p=a%20b');
  });

  it('sorts a repeated name by value, and keeps a repeat whose first value is empty', () => {
    const signed = signOAuth1(
      input({ url: new URL('https://api.example.test/r?a=z&a=&a=b&a=a=1') }),
    );
    expect(params(signed.baseString)).toMatch(/^a=&a=a%3D1&a=b&a=z&oauth_/);
  });

  it('includes the parameters of a form body, whatever its charset parameter', () => {
    const signed = signOAuth1(
      input({
        method: 'POST',
        body: Buffer.from('x=1&y=h%C3%A9'),
        contentType: 'Application/X-WWW-Form-Urlencoded; charset=UTF-8',
      }),
    );
    expect(params(signed.baseString)).toMatch(/&x=1&y=h%C3%A9$/);
  });

  it('leaves out the body when it is not a form (JSON, multipart, none declared)', () => {
    for (const contentType of ['application/json', 'multipart/form-data; boundary=x', undefined]) {
      const signed = signOAuth1(input({ method: 'POST', body: Buffer.from('x=1'), contentType }));
      expect(params(signed.baseString)).not.toContain('x=1');
    }
  });

  it('keeps a query parameter and a body parameter of the same name', () => {
    const signed = signOAuth1(
      input({
        method: 'POST',
        url: new URL('https://api.example.test/r?a3=a'),
        body: Buffer.from('a3=2+q'),
        contentType: 'application/x-www-form-urlencoded',
      }),
    );
    expect(params(signed.baseString)).toMatch(/^a3=2%20q&a3=a&/);
  });

  it('drops the default port, lower-cases scheme and host, and leaves the query out of the URI', () => {
    const signed = signOAuth1(input({ url: new URL('HTTPS://API.Example.TEST:443/Path?x=1') }));
    expect(signed.baseString.split('&')[1]).toBe('https%3A%2F%2Fapi.example.test%2FPath');
    const other = signOAuth1(input({ url: new URL('http://api.example.test:8080/p') }));
    expect(other.baseString.split('&')[1]).toBe('http%3A%2F%2Fapi.example.test%3A8080%2Fp');
  });

  it('encodes both secrets before joining them, for PLAINTEXT and HMAC alike', () => {
    const secrets = { consumerSecret: 'c&s%', tokenSecret: 't s' };
    const plain = signOAuth1(input({ ...secrets, signatureMethod: 'PLAINTEXT' }));
    expect(plain.signature).toBe('c%26s%25&t%20s');
    expect(plain.authorization).toContain('oauth_signature="c%2526s%2525%26t%2520s"');

    const hmac = signOAuth1(input({ ...secrets, signatureMethod: 'HMAC-SHA256' }));
    const expected = createHmac('sha256', 'c%26s%25&t%20s')
      .update(hmac.baseString)
      .digest('base64');
    expect(hmac.signature).toBe(expected);
    expect(hmac.baseString).toContain('oauth_signature_method%3DHMAC-SHA256');
  });

  it('signs with an empty token secret when there is no token', () => {
    const signed = signOAuth1(input({ token: undefined, tokenSecret: undefined }));
    const expected = createHmac('sha1', 'cs&').update(signed.baseString).digest('base64');
    expect(signed.signature).toBe(expected);
    expect(signed.baseString).not.toContain('oauth_token');
  });

  it('puts the realm first in the header and never in the signature', () => {
    const signed = signOAuth1(input({ realm: 'Photos' }));
    expect(signed.authorization).toMatch(/^OAuth realm="Photos", oauth_consumer_key="ck", /);
    expect(signed.baseString).not.toContain('realm');
    expect(signOAuth1(input()).baseString).toBe(signed.baseString);
  });

  it('never signs an oauth_signature found in the query, and never prints query parameters', () => {
    const signed = signOAuth1(
      input({ url: new URL('https://api.example.test/r?oauth_signature=x&oauth_extra=y') }),
    );
    expect(params(signed.baseString)).not.toContain('oauth_signature=');
    expect(params(signed.baseString)).toContain('oauth_extra=y');
    expect(signed.authorization).not.toContain('oauth_extra');
  });
});
