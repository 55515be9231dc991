/**
 * Runs one request through the shared executor in-process, the way both the control plane and
 * the agent do, and collects the answer. For tests of auth types and the executor itself.
 */
import type { FieldMap, ResolvedAccount } from '../../shared/accounts.js';
import type { AuthStateStore } from '../../shared/auth/types.js';
import {
  PublicOnlyPolicy,
  type DestinationPolicy,
} from '../../shared/executor/destination-policy.js';
import { Executor } from '../../shared/executor/executor.js';
import type { ResponseHeaders } from '../../shared/executor/headers.js';
import { jobRequestSchema, type JobRequest } from '../../shared/jobs.js';
import { createLogger } from '../../shared/logger.js';

/** An auth state store in memory, with a log of every write (to check ordering in tests). */
export class MemoryStateStore implements AuthStateStore {
  readonly states = new Map<string, FieldMap>();
  readonly writes: Array<{ accountId: string; state: FieldMap }> = [];

  get(accountId: string): FieldMap | undefined {
    return this.states.get(accountId);
  }

  set(accountId: string, state: FieldMap): void {
    this.states.set(accountId, state);
    this.writes.push({ accountId, state });
  }
}

/** The collected answer of a request. */
export interface CollectedAnswer {
  status: number;
  headers: ResponseHeaders;
  body: Buffer;
  text: string;
}

/** Options of `createTestExecutor`. */
export interface TestExecutorOptions {
  policy?: DestinationPolicy;
  accounts?: ResolvedAccount[];
  state?: MemoryStateStore;
  now?: () => number;
}

/** An executor allowed to reach loopback, plus helpers to run requests and build accounts. */
export function createTestExecutor(options: TestExecutorOptions = {}) {
  const accounts = new Map((options.accounts ?? []).map((a) => [a.id, a]));
  const state = options.state ?? new MemoryStateStore();
  const executor = new Executor({
    policy: options.policy ?? new PublicOnlyPolicy(true),
    state,
    logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'error' }),
    getAccount: (id) => accounts.get(id),
    now: options.now,
  });

  async function run(
    account: ResolvedAccount,
    request: Partial<JobRequest> & { method?: string },
    signal: AbortSignal = new AbortController().signal,
  ): Promise<CollectedAnswer> {
    accounts.set(account.id, account);
    let status = 0;
    let headers: ResponseHeaders = {};
    const chunks: Buffer[] = [];
    await executor.execute(
      {
        account,
        request: jobRequestSchema.parse({ method: 'GET', path: '/', ...request }),
        signal,
      },
      {
        head: async (s, h) => {
          status = s;
          headers = h;
        },
        chunk: async (c) => {
          chunks.push(c);
        },
      },
    );
    const body = Buffer.concat(chunks);
    return { status, headers, body, text: body.toString('utf8') };
  }

  return { executor, state, accounts, run, close: () => executor.close() };
}

let counter = 0;

/** Builds a resolved account for tests. */
export function testAccount(
  authType: ResolvedAccount['authType'],
  host: string,
  settings: FieldMap = {},
  secrets: FieldMap = {},
): ResolvedAccount {
  counter += 1;
  return {
    id: `acct_test_${counter}`,
    name: `test ${counter}`,
    authType,
    host,
    port: null,
    settings,
    secrets,
  };
}
