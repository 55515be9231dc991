import { describe, expect, it } from 'vitest';

import { buildTargetUrl, parseAccountBase } from '../../shared/executor/target-url.js';

const url = (host: string, port: number | null, path: string, query?: Record<string, never>) =>
  buildTargetUrl(parseAccountBase(host, port), path, query).toString();

describe('target URL', () => {
  it('uses http on port 80 and https otherwise when the host has no scheme', () => {
    expect(url('api.internal', 80, '/x', undefined)).toBe('http://api.internal/x');
    expect(url('api.internal', null, '/x')).toBe('https://api.internal/x');
    expect(url('api.internal:8080', null, '/x')).toBe('https://api.internal:8080/x');
    expect(url('http://api.internal', 8080, '/x')).toBe('http://api.internal:8080/x');
  });

  it('joins the base path and the path with exactly one slash', () => {
    expect(url('http://h/api/', null, '/users')).toBe('http://h/api/users');
    expect(url('http://h/api', null, 'users')).toBe('http://h/api/users');
    expect(url('http://h/api', null, '//users')).toBe('http://h/api/users');
  });

  it('keeps a query string in the path and appends query in order, RFC 3986 encoded', () => {
    const u = buildTargetUrl(parseAccountBase('http://h', null), '/s?a=1', {
      z: "it's (ok)!",
      a: [1, true],
    });
    expect(u.toString()).toBe('http://h/s?a=1&z=it%27s%20%28ok%29%21&a=1&a=true');
  });

  it('refuses two different ports, a fragment, and paths that climb above the base', () => {
    expect(() => parseAccountBase('h:81', 82)).toThrow(
      expect.objectContaining({ code: 'INVALID_TARGET' }),
    );
    expect(() => url('http://h/api', null, '/x#y')).toThrow(
      expect.objectContaining({ code: 'INVALID_TARGET' }),
    );
    expect(() => url('http://h/api', null, '/../x')).toThrow(
      expect.objectContaining({ code: 'INVALID_TARGET' }),
    );
    expect(() => url('http://h/api', null, '/%2e%2e/x')).toThrow(
      expect.objectContaining({ code: 'INVALID_TARGET' }),
    );
    expect(() => url('http://h/api', null, '/a/..\\..\\x')).toThrow(
      expect.objectContaining({ code: 'INVALID_TARGET' }),
    );
  });

  it.each([
    ['a trailing CR LF', 'http://127.0.0.1\r\n'],
    ['a leading space', ' http://127.0.0.1'],
    ['a tab inside', 'http://127.0.\t0.1'],
    ['a NUL', 'http://127.0.0.1\u0000'],
    ['a C1 character', 'http://127.0.0.1\u0085'],
  ])('refuses a host with %s rather than trimming it', (_what, host) => {
    expect(() => parseAccountBase(host, null)).toThrow(
      expect.objectContaining({ code: 'INVALID_TARGET', details: { field: 'host' } }),
    );
  });

  it('never lets the path change the host', () => {
    expect(url('http://h', null, '//other-host/x')).toBe('http://h/other-host/x');
    expect(url('http://h', null, '@other-host/x')).toBe('http://h/@other-host/x');
    expect(url('http://h', null, 'http://other/x')).toBe('http://h/http://other/x');
  });
});

describe('dot segments', () => {
  it('refuses ".." that climbs above a root base path, and allows ".." that stays below it', () => {
    expect(() => url('http://h', null, '/x/../../y')).toThrow(
      expect.objectContaining({ code: 'INVALID_TARGET' }),
    );
    expect(() => url('http://h', null, '/..')).toThrow(
      expect.objectContaining({ code: 'INVALID_TARGET' }),
    );
    expect(() => url('http://h/api', null, '/a/%2E%2e/%2e%2E/b')).toThrow(
      expect.objectContaining({ code: 'INVALID_TARGET' }),
    );
    expect(url('http://h/api', null, '/a/../b')).toBe('http://h/api/b');
    expect(url('http://h/api', null, '/a/./b')).toBe('http://h/api/a/b');
  });
});
