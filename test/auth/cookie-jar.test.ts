import { describe, expect, it } from 'vitest';

import { cookieHeader, parseSetCookie, storeCookies } from '../../shared/auth/cookie-jar.js';

const NOW = Date.parse('2030-01-01T00:00:00Z');
const LOGIN = new URL('https://app.example.test/auth/login');

describe('the cookie jar', () => {
  it('defaults Path to the directory of the login URL and keeps the cookie host-only', () => {
    expect(parseSetCookie('a=1', LOGIN, NOW)).toEqual({
      name: 'a',
      value: '1',
      domain: 'app.example.test',
      hostOnly: true,
      path: '/auth',
      secure: false,
      expiresAt: null,
    });
  });

  it('ignores a cookie for another domain and accepts one for a parent domain', () => {
    expect(parseSetCookie('a=1; Domain=other.test', LOGIN, NOW)).toBeUndefined();
    expect(parseSetCookie('a=1; Domain=.example.test', LOGIN, NOW)).toMatchObject({
      domain: 'example.test',
      hostOnly: false,
    });
  });

  it('lets Max-Age win over Expires, and deletes with an expired cookie', () => {
    const cookie = parseSetCookie(
      'a=1; Expires=Wed, 01 Jan 2031 00:00:00 GMT; Max-Age=10',
      LOGIN,
      NOW,
    );
    expect(cookie?.expiresAt).toBe(NOW + 10_000);
    const jar = storeCookies([], ['a=1; Path=/', 'b=2; Path=/'], LOGIN, NOW);
    const after = storeCookies(jar, ['a=; Path=/; Max-Age=0'], LOGIN, NOW);
    expect(after.map((c) => c.name)).toEqual(['b']);
  });

  it('sends longer paths first, never a Secure cookie over http, and nothing to another host', () => {
    const jar = storeCookies(
      [],
      ['root=r; Path=/', 'deep=d; Path=/api/v1', 's=x; Path=/; Secure'],
      LOGIN,
      NOW,
    );
    expect(cookieHeader(jar, new URL('https://app.example.test/api/v1/items'), NOW)).toBe(
      'deep=d; root=r; s=x',
    );
    expect(cookieHeader(jar, new URL('http://app.example.test/api/v1x'), NOW)).toBe('root=r');
    expect(cookieHeader(jar, new URL('https://other.example.test/'), NOW)).toBeUndefined();
  });
});
