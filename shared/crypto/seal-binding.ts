/**
 * The origins sealed secrets are bound to: the account's target and every extra origin its auth
 * type sends secrets to (an OAuth token URL). If any of them changes, secrets sealed before no
 * longer open, so a relayed account cannot be re-pointed at another host with its old secrets.
 */
import type { AccountDescriptor } from '../accounts.js';
import { authHandler } from '../auth/registry.js';
import { parseAccountBase } from '../executor/target-url.js';

type Target = Pick<AccountDescriptor, 'id' | 'name' | 'authType' | 'host' | 'port' | 'settings'>;

/** One string naming every origin an account's secrets may go to, in a stable order. */
export function sealOrigins(account: Target): string {
  const base = parseAccountBase(account.host, account.port);
  const origins = [`${base.protocol}//${base.hostname.toLowerCase()}:${base.port}`];
  const resolved = { ...account, secrets: {} };
  let extra: URL[] = [];
  try {
    extra = authHandler(account.authType).extraOrigins?.(resolved) ?? [];
  } catch {
    // Settings that name no usable token URL add no origin; the auth type reports them itself.
  }
  for (const url of extra) {
    const port = url.port !== '' ? url.port : url.protocol === 'http:' ? '80' : '443';
    origins.push(`${url.protocol}//${url.hostname.toLowerCase()}:${port}`);
  }
  return [...new Set(origins)].sort().join(' ');
}
