import { describe, expect, it } from 'vitest';

import { testAccountConnection } from '../../shared/executor/connection-test.js';
import { PublicOnlyPolicy } from '../../shared/executor/destination-policy.js';
import { createTestExecutor, testAccount } from '../helpers/executor-harness.js';

describe('the connection test of an account', () => {
  it('stops at the dns hop for a name that does not resolve, and says what to check', async () => {
    // No DNS server may be asked here, so the resolver answers as one would for an unknown name.
    const unknown = async (host: string): Promise<string> => {
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    };
    const harness = createTestExecutor();
    const account = testAccount('none', 'https://no-such-host.example.invalid');
    const hops = await testAccountConnection(
      account,
      harness.executor,
      new PublicOnlyPolicy(true),
      unknown,
    );
    expect(hops).toEqual([
      {
        name: 'dns',
        ok: false,
        ms: expect.any(Number),
        detail:
          'cannot resolve no-such-host.example.invalid: getaddrinfo ENOTFOUND no-such-host.example.invalid',
        hint: 'check the host name and the DNS servers of the terminal machine',
      },
    ]);
    await harness.close();
  });

  it('refuses at the tcp hop a destination the policy forbids', async () => {
    const harness = createTestExecutor();
    const account = testAccount('none', 'http://127.0.0.1:9');
    const hops = await testAccountConnection(
      account,
      harness.executor,
      new PublicOnlyPolicy(false),
    );
    expect(hops.map((h) => [h.name, h.ok])).toEqual([
      ['dns', true],
      ['tcp', false],
    ]);
    expect(hops[1]!.detail).toContain('loopback');
    await harness.close();
  });
});
