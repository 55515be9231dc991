/** Reads a secret a request needs at run time, failing clearly when it was never set. */
import type { ResolvedAccount } from '../accounts.js';
import { OutpostError } from '../errors.js';

/**
 * The value of a required secret. A bound account may reach its terminal before all its secrets
 * are set (some are set on site); such a job fails rather than send "undefined" as a credential.
 */
export function requiredSecret(account: ResolvedAccount, field: string): string {
  const value = account.secrets[field];
  if (typeof value !== 'string') {
    throw new OutpostError(
      'INVALID_SECRET',
      `secrets.${field} of account ${account.id} is not set: set it through the API or with ` +
        `terminal-agent accounts set-secret ${account.id} ${field}`,
      { field: `secrets.${field}` },
    );
  }
  return value;
}
