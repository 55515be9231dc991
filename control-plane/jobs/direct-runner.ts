/**
 * Runs jobs of accounts without a terminal, from the control plane itself, with the shared
 * executor. Secrets are decrypted from the store only for the run; tokens and cookies obtained
 * on the way are stored encrypted under the master key.
 */
import type { FieldMap } from '../../shared/accounts.js';
import type { AuthStateStore } from '../../shared/auth/types.js';
import { decryptAtRest, encryptAtRest } from '../../shared/crypto/aes-gcm.js';
import { deadlineSignal } from '../../shared/executor/deadline.js';
import { PublicOnlyPolicy } from '../../shared/executor/destination-policy.js';
import { Executor } from '../../shared/executor/executor.js';
import { outcomeOfError } from '../../shared/executor/outcome.js';
import { registerSecrets, type Logger } from '../../shared/logger.js';
import type { AccountService } from '../accounts/account-service.js';
import type { MasterKeys } from '../secrets/master-key.js';
import { getAccount, getAuthState, setAuthState } from '../store/accounts.js';
import type { Db } from '../store/database.js';
import type { JobRecord } from '../store/jobs.js';
import type { DirectRunner, JobService } from './job-service.js';

/** Auth state of direct accounts, encrypted at rest in the control plane's store. */
export class StoredAuthState implements AuthStateStore {
  constructor(
    private readonly db: Db,
    private readonly keys: MasterKeys,
  ) {}

  get(accountId: string): FieldMap | undefined {
    const stored = getAuthState(this.db, accountId);
    if (!stored) return undefined;
    const state = JSON.parse(
      decryptAtRest(this.keys.all, stored, `auth-state:${accountId}`),
    ) as FieldMap;
    registerSecrets(state);
    return state;
  }

  set(accountId: string, state: FieldMap): void {
    registerSecrets(state);
    setAuthState(
      this.db,
      accountId,
      encryptAtRest(this.keys.current, JSON.stringify(state), `auth-state:${accountId}`),
    );
  }
}

/** The control plane's runner of direct jobs. */
export class ControlPlaneDirectRunner implements DirectRunner {
  readonly executor: Executor;
  /** Where direct jobs may go: public addresses, unless private targets are allowed. */
  readonly policy: PublicOnlyPolicy;

  constructor(
    private readonly db: Db,
    private readonly accounts: AccountService,
    private readonly jobs: JobService,
    keys: MasterKeys,
    private readonly logger: Logger,
    allowPrivateTargets: boolean,
    /** Streams of uploaded request bodies, by job id. */
    private readonly uploadedBody: (jobId: string) => AsyncIterable<Buffer> | undefined,
  ) {
    this.policy = new PublicOnlyPolicy(allowPrivateTargets);
    this.executor = new Executor({
      policy: this.policy,
      state: new StoredAuthState(db, keys),
      logger,
      getAccount: (id) => {
        const row = db.prepare('SELECT workspace_id FROM accounts WHERE id = ?').get(id) as
          { workspace_id: string } | undefined;
        const account = row ? getAccount(db, row.workspace_id, id) : undefined;
        return account && account.terminalId === null
          ? this.accounts.resolveDirect(account)
          : undefined;
      },
    });
  }

  async run(job: JobRecord, signal: AbortSignal): Promise<void> {
    const log = this.logger.child({ jobId: job.id });
    let bodyBytes = 0;
    const deadline = deadlineSignal(job.deadlineAt);
    try {
      const record = getAccount(this.db, job.workspaceId, job.accountId);
      if (!record) throw new Error(`account ${job.accountId} no longer exists`);
      const account = this.accounts.resolveDirect(record);
      const result = await this.executor.execute(
        {
          account,
          request: job.request,
          streamedBody: job.requestBodyUpload ? this.uploadedBody(job.id) : undefined,
          signal: AbortSignal.any([signal, deadline.signal]),
          logger: log,
        },
        {
          head: async (status, headers) => this.jobs.onHead(job.id, status, headers),
          chunk: async (data) => {
            await this.jobs.onChunk(job.id, bodyBytes, data);
            bodyBytes += data.length;
          },
        },
      );
      await this.jobs.onEnd(job.id, {
        state: 'succeeded',
        error: null,
        bodyBytes: result.bodyBytes,
      });
    } catch (err) {
      const outcome = outcomeOfError(err, bodyBytes);
      log.debug('direct job failed', { code: outcome.error?.code });
      await this.jobs.onEnd(job.id, outcome);
    } finally {
      deadline.dispose();
    }
  }
}
