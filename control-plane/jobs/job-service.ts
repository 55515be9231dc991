/**
 * Jobs on the control plane: creation, dispatch to a terminal or to the direct runner, results,
 * deadlines and cancellation. Every state change is stored before it is acted on (sent, run or
 * answered), and a result for a job that is already final is dropped.
 */
import type { ErrorBody } from '../../shared/errors.js';
import { OutpostError } from '../../shared/errors.js';
import type { ResponseHeaders } from '../../shared/executor/headers.js';
import { newId } from '../../shared/ids.js';
import {
  DEFAULT_JOB_TIMEOUT_MS,
  isFinalState,
  type JobOutcome,
  type JobState,
} from '../../shared/jobs.js';
import type { Logger } from '../../shared/logger.js';
import type { ControlMessage } from '../../shared/protocol/messages.js';
import { getAccount, type AccountRecord } from '../store/accounts.js';
import type { Db } from '../store/database.js';
import { recordAudit } from '../store/audit.js';
import {
  countQueued,
  finishJob,
  findByIdempotencyKey,
  getInlineBody,
  getJobById,
  getJobOwnerState,
  inFlightJobsOfTerminal,
  insertJob,
  openJobs,
  queuedJobsOfTerminal,
  recordResponseHead,
  transitionJob,
  type JobRecord,
} from '../store/jobs.js';
import { getTerminalById } from '../store/terminals.js';
import type { BodySpool } from './body-spool.js';
import { assertSameJobForKey } from './idempotency.js';
import { checkNewJob, type NewJobInput } from './job-intake.js';
import { JobWaiters } from './job-waiters.js';
import { RateLimiter, rateLimitOf } from './rate-limiter.js';
import type { RequestUploads } from './request-uploads.js';

/** How the job service reaches terminals (implemented by the agent gateway). */
export interface TerminalLink {
  isOnline(terminalId: string): boolean;
  /** Concurrency the connected agent accepts, or undefined when offline. */
  agentConcurrency(terminalId: string): number | undefined;
  send(terminalId: string, message: ControlMessage): boolean;
}

/** Runs a job of an account without a terminal. */
export interface DirectRunner {
  run(job: JobRecord, signal: AbortSignal): Promise<void>;
}

/** Options of the job service. */
export interface JobServiceOptions {
  defaultConcurrency: number;
  maxQueuedPerTerminal: number;
  maxDirectConcurrency: number;
}

/** Coordinates jobs. */
export class JobService {
  private link: TerminalLink | undefined;
  private direct: DirectRunner | undefined;
  /** API callers waiting on jobs. */
  private readonly waiters: JobWaiters;
  private readonly limiter = new RateLimiter();
  private readonly running = new Map<string, Set<string>>();
  private readonly directRunning = new Map<string, AbortController>();
  private readonly directQueue: string[] = [];
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly pumpTimers = new Map<string, NodeJS.Timeout>();
  private readonly uploads = new Set<string>();
  /** Streams request bodies of `requestBodyUpload` jobs to where they run. */
  requestUploads: RequestUploads | undefined;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Db,
    readonly spool: BodySpool,
    private readonly logger: Logger,
    private readonly options: JobServiceOptions,
  ) {
    this.waiters = new JobWaiters(db);
  }

  /** Connects the terminal link and the direct runner, recovers open jobs, starts the sweeper. */
  start(link: TerminalLink, direct: DirectRunner): void {
    this.link = link;
    this.direct = direct;
    for (const job of openJobs(this.db)) {
      if (job.terminalId === null) {
        // A direct job that was running when the process stopped cannot be known to have reached
        // its target only once: end it rather than run it again.
        if (job.state !== 'queued') {
          this.finish(
            job.id,
            'failed',
            {
              code: 'AGENT_LOST_JOB',
              message:
                'the control plane restarted while this direct job ran; it was not run again',
            },
            null,
          );
          continue;
        }
        this.directQueue.push(job.id);
      } else if (job.state !== 'queued') {
        this.runningSet(job.terminalId).add(job.id);
      }
      this.armDeadline(job);
    }
    this.pumpDirect();
    this.sweeper = setInterval(() => this.sweep(), 1000);
    this.sweeper.unref();
  }

  /** Stops timers. */
  stop(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    for (const t of this.timers.values()) clearTimeout(t);
    for (const t of this.pumpTimers.values()) clearTimeout(t);
    for (const c of this.directRunning.values())
      c.abort(new OutpostError('AGENT_SHUTDOWN', 'the control plane stopped'));
  }

  private runningSet(terminalId: string): Set<string> {
    let set = this.running.get(terminalId);
    if (!set) {
      set = new Set();
      this.running.set(terminalId, set);
    }
    return set;
  }

  /** Creates a job (or returns the one created with the same idempotency key). */
  create(
    workspaceId: string,
    input: NewJobInput,
    idempotencyKey: string | undefined,
    actor: string,
  ): { job: JobRecord; created: boolean } {
    if (idempotencyKey !== undefined) {
      if (idempotencyKey.length === 0 || idempotencyKey.length > 200) {
        throw new OutpostError('VALIDATION_FAILED', 'Idempotency-Key must be 1 to 200 characters', {
          field: 'Idempotency-Key',
        });
      }
      const existing = findByIdempotencyKey(this.db, workspaceId, idempotencyKey);
      if (existing) {
        assertSameJobForKey(existing, input);
        return { job: existing, created: false };
      }
    }
    const account = checkNewJob(this.db, workspaceId, input);
    if (account.terminalId) {
      const queued = countQueued(this.db, account.terminalId);
      if (queued >= this.options.maxQueuedPerTerminal) {
        throw new OutpostError(
          'QUEUE_FULL',
          `terminal ${account.terminalId} already has ${queued} queued jobs; retry later`,
          { retryAfterSeconds: 5 },
        );
      }
    }
    const deadlineAt = new Date(
      Date.now() + (input.timeoutMs ?? DEFAULT_JOB_TIMEOUT_MS),
    ).toISOString();
    // The job and its audit row in one commit: one write to the log instead of two.
    const job = this.db.transaction(() => {
      const created = insertJob(this.db, {
        id: newId('job'),
        workspaceId,
        accountId: account.id,
        terminalId: account.terminalId,
        request: input.request,
        requestBodyUpload: input.requestBodyUpload ?? false,
        idempotencyKey: idempotencyKey ?? null,
        deadlineAt,
      });
      recordAudit(this.db, workspaceId, {
        actor,
        action: 'job.create',
        targetType: 'job',
        targetId: created.id,
        details: {
          accountId: account.id,
          terminalId: account.terminalId,
          method: input.request.method,
        },
      });
      return created;
    })();
    this.armDeadline(job);
    if (!job.requestBodyUpload) this.enqueue(job);
    return { job, created: true };
  }

  private enqueue(job: JobRecord): void {
    if (job.terminalId) this.pump(job.terminalId);
    else {
      this.directQueue.push(job.id);
      this.pumpDirect();
    }
  }

  /** Marks the upload of a job's request body as begun: the job may now be dispatched. */
  beginUpload(job: JobRecord): void {
    if (!job.requestBodyUpload) {
      throw new OutpostError('CONFLICT', 'this job was not created with requestBodyUpload: true');
    }
    if (job.state !== 'queued' || this.uploads.has(job.id)) {
      throw new OutpostError(
        'CONFLICT',
        `the request body of job ${job.id} was already sent or the job ended`,
      );
    }
    this.uploads.add(job.id);
    this.enqueue(job);
  }

  /** True while a job's request body is being uploaded. */
  uploading(jobId: string): boolean {
    return this.uploads.has(jobId);
  }

  /** Ends an upload (sent or abandoned). */
  endUpload(jobId: string): void {
    this.uploads.delete(jobId);
  }

  private concurrencyOf(terminalId: string): number {
    const terminal = getTerminalById(this.db, terminalId);
    const cloud = terminal?.maxConcurrency ?? this.options.defaultConcurrency;
    const agent = this.link?.agentConcurrency(terminalId) ?? cloud;
    return Math.max(1, Math.min(cloud, agent));
  }

  /** Sends queued jobs of a terminal while it has capacity and their accounts are under limit. */
  pump(terminalId: string): void {
    const link = this.link;
    if (!link?.isOnline(terminalId)) return;
    const running = this.runningSet(terminalId);
    const limit = this.concurrencyOf(terminalId);
    if (running.size >= limit) return;
    const blocked = new Set<string>();
    // Accounts read once per pass: the jobs of one pass mostly share a few accounts.
    const accounts = new Map<string, AccountRecord | undefined>();
    let retryIn = Infinity;
    for (const job of this.queuedPages(terminalId, limit - running.size)) {
      if (running.size >= limit) break;
      if (blocked.has(job.accountId)) continue;
      if (job.requestBodyUpload && !this.uploads.has(job.id)) continue;
      const wait = this.rateWait(job, accounts);
      if (wait > 0) {
        // Later jobs of the same account wait behind this one, in order.
        blocked.add(job.accountId);
        retryIn = Math.min(retryIn, wait);
        continue;
      }
      if (Date.parse(job.deadlineAt) <= Date.now()) {
        // Its deadline passed while it waited: it must not reach the target any more.
        this.expire(job.id);
        continue;
      }
      if (!transitionJob(this.db, job.id, ['queued'], 'dispatched')) continue;
      this.limiter.record(job.accountId);
      running.add(job.id);
      const sent = link.send(terminalId, {
        type: 'job.start',
        jobId: job.id,
        accountId: job.accountId,
        request: job.request,
        deadlineAt: job.deadlineAt,
        bodyUpload: job.requestBodyUpload,
      });
      this.logger.debug('job dispatched', { jobId: job.id, terminalId, sent });
      if (sent && job.requestBodyUpload)
        void this.requestUploads?.sendToTerminal(terminalId, job.id);
      this.waiters.changedOne(job.id);
    }
    if (retryIn !== Infinity) this.schedulePump(terminalId, retryIn);
  }

  /**
   * The queued jobs of a terminal, oldest first: a page about the size of the free slots (a
   * finished job frees one, and reading and parsing every queued row each time would cost more
   * than the job), then, when the pass is not done with those (jobs held by a rate limit or an
   * upload), up to 500.
   */
  private *queuedPages(terminalId: string, free: number): Generator<JobRecord> {
    const first = free + 16;
    const page = queuedJobsOfTerminal(this.db, terminalId, first);
    yield* page;
    if (page.length < first) return;
    const seen = new Set(page.map((j) => j.id));
    for (const job of queuedJobsOfTerminal(this.db, terminalId, 500)) {
      if (!seen.has(job.id)) yield job;
    }
  }

  private rateWait(job: JobRecord, accounts?: Map<string, AccountRecord | undefined>): number {
    let account = accounts?.get(job.accountId);
    if (!account && !accounts?.has(job.accountId)) {
      account = getAccount(this.db, job.workspaceId, job.accountId);
      accounts?.set(job.accountId, account);
    }
    return account ? this.limiter.waitMs(job.accountId, rateLimitOf(account.settings)) : 0;
  }

  private schedulePump(key: string, ms: number): void {
    if (this.pumpTimers.has(key)) return;
    const t = setTimeout(
      () => {
        this.pumpTimers.delete(key);
        if (key === '') this.pumpDirect();
        else this.pump(key);
      },
      Math.max(10, ms),
    );
    t.unref();
    this.pumpTimers.set(key, t);
  }

  private pumpDirect(): void {
    const direct = this.direct;
    if (!direct) return;
    let retryIn = Infinity;
    const blocked = new Set<string>();
    for (
      let i = 0;
      i < this.directQueue.length && this.directRunning.size < this.options.maxDirectConcurrency;
    ) {
      const job = getJobById(this.db, this.directQueue[i]!);
      if (!job || job.state !== 'queued') {
        this.directQueue.splice(i, 1);
        continue;
      }
      if (job.requestBodyUpload && !this.uploads.has(job.id)) {
        i++;
        continue;
      }
      const wait = blocked.has(job.accountId) ? 1 : this.rateWait(job);
      if (wait > 0) {
        blocked.add(job.accountId);
        retryIn = Math.min(retryIn, wait);
        i++;
        continue;
      }
      this.directQueue.splice(i, 1);
      if (Date.parse(job.deadlineAt) <= Date.now()) {
        this.expire(job.id);
        continue;
      }
      if (!transitionJob(this.db, job.id, ['queued'], 'running')) continue;
      this.limiter.record(job.accountId);
      const controller = new AbortController();
      this.directRunning.set(job.id, controller);
      this.waiters.changedOne(job.id);
      direct
        .run(job, controller.signal)
        .catch((err: unknown) => this.logger.error('direct job crashed', { jobId: job.id, err }))
        .finally(() => {
          this.directRunning.delete(job.id);
          this.pumpDirect();
        });
    }
    if (retryIn !== Infinity) this.schedulePump('', retryIn);
  }

  // ---- results, from a terminal or the direct runner ----

  /** The job started on the agent. */
  onRunning(jobId: string): void {
    if (transitionJob(this.db, jobId, ['dispatched'], 'running')) this.waiters.changedOne(jobId);
  }

  /** The head of the target's answer arrived. */
  onHead(jobId: string, status: number, headers: ResponseHeaders): void {
    // One statement stores the head and moves a `dispatched` job to `running`; its WHERE clause
    // checks the state, so no read comes first.
    if (recordResponseHead(this.db, jobId, status, headers)) this.waiters.changedOne(jobId);
  }

  /** A chunk of body arrived; resolves with the bytes held once they are (memory or file). */
  onChunk(jobId: string, offset: number, data: Buffer): Promise<number> {
    return this.spool.append(jobId, offset, data);
  }

  /** The job ended where it ran. Returns false when it was already final (stale, dropped). */
  async onEnd(jobId: string, outcome: JobOutcome): Promise<boolean> {
    await this.spool.settle(jobId);
    const held = this.spool.size(jobId);
    let { state, error } = outcome;
    if (state === 'succeeded' && held < outcome.bodyBytes) {
      state = 'failed';
      error = {
        code: 'BODY_INCOMPLETE',
        message: `only ${held} of ${outcome.bodyBytes} body bytes arrived`,
      };
    }
    return this.finish(jobId, state, error, state === 'succeeded' ? outcome.bodyBytes : held);
  }

  /** The body stored with a final job (it ended while its body was in memory), if any. */
  inlineBody(jobId: string): Buffer | undefined {
    return getInlineBody(this.db, jobId);
  }

  /**
   * Ends a job in a final state (stored first, with a body still held in memory), then wakes
   * waiters and frees capacity.
   */
  finish(
    jobId: string,
    state: JobOutcome['state'],
    error: ErrorBody | null,
    bodyBytes: number | null,
  ): boolean {
    // Taken and stored in the same turn: a reader finds the body in memory or in the row.
    const inline = this.spool.takeMemory(jobId) ?? null;
    const changed = finishJob(this.db, jobId, state, error, bodyBytes, inline);
    const job = getJobOwnerState(this.db, jobId);
    const timer = this.timers.get(jobId);
    if (timer) clearTimeout(timer);
    this.timers.delete(jobId);
    this.uploads.delete(jobId);
    if (job && error)
      this.requestUploads?.abort(jobId, new OutpostError(error.code, error.message));
    if (job?.terminalId) {
      const running = this.runningSet(job.terminalId);
      if (running.delete(jobId)) this.pump(job.terminalId);
    }
    if (changed) {
      this.logger.info('job finished', { jobId, state, code: error?.code });
      // A body in a file: close its writer (off the caller's path).
      if (!inline) void this.spool.close(jobId);
    }
    this.spool.notify(jobId);
    this.waiters.changedOne(jobId);
    this.waiters.ended(jobId);
    return changed;
  }

  /** Cancels a job: final at once; a terminal running it is told to abort. */
  cancel(job: JobRecord): JobRecord {
    if (isFinalState(job.state)) return job;
    this.finish(
      job.id,
      'cancelled',
      { code: 'CANCELLED', message: 'the job was cancelled through the API' },
      null,
    );
    this.abortWhereRunning(job);
    return getJobById(this.db, job.id)!;
  }

  /** Fails a job that has not ended (its upload broke) and aborts it where it runs. */
  fail(jobId: string, error: ErrorBody): void {
    const job = getJobById(this.db, jobId);
    if (!job || isFinalState(job.state)) return;
    this.finish(jobId, 'failed', error, null);
    this.abortWhereRunning(job);
  }

  private abortWhereRunning(job: JobRecord): void {
    if (job.terminalId && job.state !== 'queued')
      this.link?.send(job.terminalId, { type: 'job.cancel', jobId: job.id });
    this.directRunning.get(job.id)?.abort(new OutpostError('CANCELLED', 'the job was cancelled'));
  }

  private armDeadline(job: JobRecord): void {
    const ms = Date.parse(job.deadlineAt) - Date.now();
    const t = setTimeout(() => this.expire(job.id), Math.max(0, Math.min(ms, 2 ** 31 - 1)));
    t.unref();
    this.timers.set(job.id, t);
  }

  private expire(jobId: string): void {
    const job = getJobById(this.db, jobId);
    if (!job || isFinalState(job.state)) return;
    let error: ErrorBody;
    if (job.state === 'queued') {
      const offline = job.terminalId !== null && !this.link?.isOnline(job.terminalId);
      error = {
        code: 'TIMEOUT_QUEUED',
        message: offline
          ? `the job's deadline passed while it waited in the queue: terminal ${job.terminalId} is offline`
          : "the job's deadline passed while it waited in the queue (concurrency or rate limit)",
      };
    } else {
      error = {
        code: 'TIMEOUT_JOB',
        message: "the job's deadline passed before the target's answer was complete",
      };
    }
    this.finish(jobId, 'timed_out', error, null);
    this.abortWhereRunning(job);
  }

  /** Catches deadlines that timers may have missed (clock jumps). */
  private sweep(): void {
    const now = Date.now();
    for (const job of openJobs(this.db)) if (Date.parse(job.deadlineAt) <= now) this.expire(job.id);
  }

  /** Puts a dispatched job back in the queue (its start never reached the agent's journal). */
  requeue(terminalId: string, jobId: string): void {
    if (transitionJob(this.db, jobId, ['dispatched'], 'queued'))
      this.runningSet(terminalId).delete(jobId);
  }

  /**
   * True when a job was dispatched to a terminal and is not final: the in-memory set that frees
   * capacity, kept with every stored change, so messages of a running job need no read.
   */
  isInFlightOn(terminalId: string, jobId: string): boolean {
    return this.running.get(terminalId)?.has(jobId) ?? false;
  }

  /** In-flight jobs of a terminal as the store knows them (for a reconnect). */
  inFlight(terminalId: string): JobRecord[] {
    return inFlightJobsOfTerminal(this.db, terminalId);
  }

  /** Waits until the job is final (or the signal aborts) and returns it. */
  waitFinal(jobId: string, signal: AbortSignal): Promise<JobRecord> {
    return this.waiters.waitFinal(jobId, signal);
  }

  /** Waits until the job has its answer's head or is final. */
  waitHead(jobId: string, signal: AbortSignal): Promise<JobRecord> {
    return this.waiters.waitHead(jobId, signal);
  }

  /** The current state of a job. */
  stateOf(jobId: string): JobState | undefined {
    // Asked per chunk by body readers: read the state alone, not the whole row.
    return getJobOwnerState(this.db, jobId)?.state;
  }
}
