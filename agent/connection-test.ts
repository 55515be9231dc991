/** The terminal's half of a connection test: the hops of an account it holds. */
import { hop, testAccountConnection } from '../shared/executor/connection-test.js';
import type { Executor } from '../shared/executor/executor.js';
import type { TestHop } from '../shared/protocol/messages.js';
import type { AccountRegistry } from './account-registry.js';

/** Runs the hops for one held account; none when only the terminal hop was asked for. */
export async function runConnectionTest(
  accounts: AccountRegistry,
  executor: Executor,
  accountId: string | null,
): Promise<TestHop[]> {
  if (accountId === null) return [];
  const account = accounts.resolve(accountId);
  if (!account) {
    const detail = `this terminal does not hold account ${accountId}`;
    return [hop('dns', false, null, detail, 'check that the account is bound to this terminal')];
  }
  return testAccountConnection(account, executor, accounts.policy);
}
