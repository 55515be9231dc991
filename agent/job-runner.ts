/**
 * Runs the jobs the control plane sends. Each job id is written to the journal before the
 * request goes out, so a job delivered twice runs once; the body is spooled while it uploads
 * under the control plane's credit, so a result survives a reconnect and is sent again until the
 * control plane acknowledges it.
 */
import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';

import type { AuthStateStore } from '../shared/auth/types.js';
import { OutpostError } from '../shared/errors.js';
import { deadlineSignal } from '../shared/executor/deadline.js';
import { Executor } from '../shared/executor/executor.js';
import { outcomeOfError } from '../shared/executor/outcome.js';
import type { JobOutcome } from '../shared/jobs.js';
import type { Logger } from '../shared/logger.js';
import { encodeBodyFrame, FRAME_KIND } from '../shared/protocol/binary-frames.js';
import {
  CHANNEL_LIMITS,
  type AgentMessage,
  type ControlMessage,
} from '../shared/protocol/messages.js';
import type { AccountRegistry } from './account-registry.js';
import type { AgentStore } from './agent-store.js';
import { RequestBodyQueue } from './request-body-queue.js';
import { jobOfSpoolFile, ResponseSpool, spoolSweeper } from './response-spool.js';

const EMPTY = Buffer.alloc(0);

/** How the runner talks to the control plane. */
export interface RunnerChannel {
  readonly connected: boolean;
  send(message: AgentMessage): boolean;
  sendBinary(frame: Buffer): Promise<boolean>;
}

type StartMessage = Extract<ControlMessage, { type: 'job.start' }>;

/** One job this process knows: running here, or finished and not yet acknowledged. */
interface ActiveJob {
  jobId: string;
  controller: AbortController;
  spool: ResponseSpool;
  head: { status: number; headers: Record<string, string | string[]> } | null;
  outcome: JobOutcome | null;
  /** Offset the next frame is sent from; reset by `job.resume`. */
  sendOffset: number;
  /** Bumped on every resume and connection change so that an older upload loop stops. */
  epoch: number;
  /** The epoch of the upload loop that runs now, or null when none does. */
  loop: number | null;
  /**
   * True from a connection change until the control plane says where to resend from: an upload
   * from the old offset would leave a gap where frames in flight were lost.
   */
  awaitingResume: boolean;
  requestBody: RequestBodyQueue | null;
}

/** Options of the job runner. */
export interface JobRunnerOptions {
  store: AgentStore;
  accounts: AccountRegistry;
  channel: RunnerChannel;
  logger: Logger;
  maxConcurrency: number;
}

/** Executes jobs and uploads their results. */
export class JobRunner {
  readonly executor: Executor;
  private readonly jobs = new Map<string, ActiveJob>();
  private readonly waiting: StartMessage[] = [];
  private running = 0;
  private readonly spoolRoot: string;
  private draining = false;

  constructor(private readonly options: JobRunnerOptions) {
    const { store, accounts, logger } = options;
    const state: AuthStateStore = {
      get: (id) => store.getAuthState(id),
      set: (id, value) => store.setAuthState(id, value),
    };
    this.executor = new Executor({
      policy: accounts.policy,
      state,
      logger,
      getAccount: (id) => accounts.resolve(id),
    });
    this.spoolRoot = path.join(store.dataDir, 'spool');
    // Made once: a job's spool files go straight into it, without a folder of their own.
    mkdirSync(this.spoolRoot, { recursive: true, mode: 0o700 });
  }

  /** Number of jobs executing now. */
  get runningCount(): number {
    return this.running;
  }

  /**
   * After a restart: a job the journal shows as running was cut off mid-flight; it is never
   * run again (the target may have seen it), but reported as failed. Finished jobs whose result
   * was not acknowledged are reloaded to be sent again.
   */
  recover(): void {
    const unacked = this.options.store.journal.unacked();
    // Files of acknowledged jobs whose deletion the last run did not get to.
    const kept = new Set(unacked.filter((e) => e.state === 'finished').map((e) => e.jobId));
    for (const name of readdirSync(this.spoolRoot)) {
      if (!kept.has(jobOfSpoolFile(name))) spoolSweeper.add(path.join(this.spoolRoot, name), true);
    }
    for (const entry of unacked) {
      const lost = entry.state === 'running';
      if (lost) {
        // What was spooled of a lost job's body is not an answer (its files were queued for
        // deletion above): only its failure is reported.
        this.options.store.journal.finish(entry.jobId, {
          state: 'failed',
          error: {
            code: 'AGENT_LOST_JOB',
            message:
              'the terminal stopped while this job ran; it was not run again to avoid running it twice',
          },
          bodyBytes: 0,
        });
      }
      const finished = this.options.store.journal.entry(entry.jobId)!;
      const spool = finished.body
        ? ResponseSpool.fromJournal(this.spoolRoot, entry.jobId, finished.body)
        : ResponseSpool.reopen(this.spoolRoot, entry.jobId, lost ? 0 : finished.bodyBytes);
      this.jobs.set(entry.jobId, {
        jobId: entry.jobId,
        controller: new AbortController(),
        spool,
        head:
          !lost && finished.status !== null
            ? { status: finished.status, headers: finished.headers ?? {} }
            : null,
        outcome: {
          state: finished.outcomeState ?? 'failed',
          error: finished.error,
          bodyBytes: finished.bodyBytes,
        },
        sendOffset: spool.lowestOffset,
        epoch: 0,
        loop: null,
        awaitingResume: true,
        requestBody: null,
      });
    }
  }

  /** The jobs to list in the hello. */
  heldJobs(): Array<{ jobId: string; state: 'running' | 'finished' }> {
    return [...this.jobs.values()].map((j) => ({
      jobId: j.jobId,
      state: j.outcome ? 'finished' : 'running',
    }));
  }

  /** Handles the job messages of the protocol. */
  handle(message: ControlMessage): void {
    switch (message.type) {
      case 'job.start':
        this.start(message);
        return;
      case 'job.cancel':
        this.jobs
          .get(message.jobId)
          ?.controller.abort(new OutpostError('CANCELLED', 'the job was cancelled'));
        this.dropWaiting(message.jobId);
        return;
      case 'job.ack':
        void this.acknowledged(message.jobId);
        return;
      case 'job.resume':
        this.resume(message.jobId, message.offset);
        return;
      case 'body.credit': {
        const job = this.jobs.get(message.jobId);
        job?.spool.confirm(message.confirmedBytes);
        return;
      }
      case 'body.end':
        this.jobs.get(message.jobId)?.requestBody?.end();
        return;
      default:
        return;
    }
  }

  /** A request body frame from the control plane. */
  requestBodyChunk(jobId: string, offset: number, data: Buffer): void {
    this.jobs.get(jobId)?.requestBody?.push(offset, data);
  }

  private dropWaiting(jobId: string): void {
    const i = this.waiting.findIndex((w) => w.jobId === jobId);
    if (i >= 0) {
      this.waiting.splice(i, 1);
      this.options.store.journal.start(jobId, 'unknown');
      this.options.store.journal.finish(jobId, {
        state: 'cancelled',
        error: { code: 'CANCELLED', message: 'the job was cancelled' },
        bodyBytes: 0,
      });
    }
  }

  private start(message: StartMessage): void {
    const held = this.jobs.get(message.jobId);
    if (held) {
      // Sent again: the control plane requeued it because the hello that would have listed it
      // was built before it reached the journal. It runs once; its result is sent again from what
      // the control plane confirmed (it skips bytes it already holds).
      this.options.logger.info('job delivered again; resending its result instead', {
        jobId: message.jobId,
      });
      if (!held.outcome) this.options.channel.send({ type: 'job.running', jobId: held.jobId });
      this.resume(held.jobId, held.spool.confirmed);
      return;
    }
    if (this.waiting.some((w) => w.jobId === message.jobId)) return;
    if (this.options.store.journal.has(message.jobId)) {
      // Delivered again (a reconnect): it ran, or runs, once. Its result is resent on resume.
      this.options.logger.info('job delivered again; not running it twice', {
        jobId: message.jobId,
      });
      return;
    }
    if (this.draining) return;
    if (this.running >= this.options.maxConcurrency) {
      this.waiting.push(message);
      return;
    }
    void this.run(message);
  }

  private async run(message: StartMessage): Promise<void> {
    const { store, accounts, logger } = this.options;
    if (!store.journal.start(message.jobId, message.accountId)) return;
    this.running++;
    const log = logger.child({ jobId: message.jobId });
    const spool = ResponseSpool.create(this.spoolRoot, message.jobId);
    const job: ActiveJob = {
      jobId: message.jobId,
      controller: new AbortController(),
      spool,
      head: null,
      outcome: null,
      sendOffset: 0,
      epoch: 0,
      loop: null,
      awaitingResume: false,
      requestBody: message.bodyUpload
        ? new RequestBodyQueue((consumed) =>
            this.options.channel.send({
              type: 'body.credit',
              jobId: message.jobId,
              confirmedBytes: consumed,
            }),
          )
        : null,
    };
    this.jobs.set(message.jobId, job);
    this.options.channel.send({ type: 'job.running', jobId: message.jobId });
    const deadline = deadlineSignal(message.deadlineAt);
    const signal = AbortSignal.any([job.controller.signal, deadline.signal]);
    let bodyBytes = 0;
    try {
      if (Date.parse(message.deadlineAt) <= Date.now()) {
        // Late delivery (a long reconnect): a job past its deadline never reaches the target.
        throw new OutpostError(
          'TIMEOUT_JOB',
          "the job's deadline passed before the terminal could start it",
        );
      }
      const account = accounts.resolve(message.accountId);
      if (!account) {
        throw new OutpostError(
          'TARGET_FORBIDDEN',
          `this terminal does not hold account ${message.accountId}`,
        );
      }
      log.debug('running job', { accountId: account.id, method: message.request.method });
      const result = await this.executor.execute(
        {
          account,
          request: message.request,
          streamedBody: job.requestBody ?? undefined,
          signal,
          logger: log,
        },
        {
          head: async (status, headers) => {
            // Journaled with the outcome: only a finished job's result is ever resent.
            job.head = { status, headers };
            this.options.channel.send({ type: 'job.head', jobId: job.jobId, status, headers });
            this.upload(job);
          },
          chunk: async (data) => {
            await spool.write(data, signal);
            bodyBytes += data.length;
            this.upload(job);
          },
        },
      );
      // Bytes are written to the spool behind the target's reading: all must be held first.
      await spool.flushed();
      job.outcome = { state: 'succeeded', error: null, bodyBytes: result.bodyBytes };
    } catch (err) {
      job.outcome = outcomeOfError(err, bodyBytes);
      log.info('job ended without a whole answer', { code: job.outcome.error?.code });
    } finally {
      deadline.dispose();
      // The journal says finished only once the spool holds every byte it counts.
      await spool.flushed().catch(() => undefined);
      spool.finish();
      store.journal.finish(job.jobId, job.outcome!, job.head, spool.memoryBody() ?? null);
      this.running--;
      const next = this.waiting.shift();
      if (next) void this.run(next);
    }
    this.upload(job);
  }

  /**
   * Starts (or wakes) the upload loop of a job. At most one loop per epoch runs: two loops
   * sharing `sendOffset` would skip bytes and leave a gap in the control plane's copy.
   */
  private upload(job: ActiveJob): void {
    if (job.awaitingResume) return;
    if (job.loop === job.epoch) {
      job.spool.poke();
      return;
    }
    const epoch = job.epoch;
    job.loop = epoch;
    this.uploadLoop(job, epoch)
      .catch((err: unknown) => {
        // The next resume (after a reconnect) starts over from what the control plane holds.
        this.options.logger.warn('upload of a job result stopped', {
          jobId: job.jobId,
          err: (err as Error).message,
        });
      })
      .finally(() => {
        if (job.loop === epoch) job.loop = null;
      });
  }

  /** Sends body frames within the credit window, then the end. Stops when disconnected. */
  private async uploadLoop(job: ActiveJob, epoch: number): Promise<void> {
    const channel = this.options.channel;
    while (channel.connected && job.epoch === epoch) {
      const spool = job.spool;
      const window = spool.confirmed + CHANNEL_LIMITS.creditWindowBytes;
      if (job.sendOffset < spool.produced && job.sendOffset < window) {
        if (job.sendOffset < spool.lowestOffset) {
          job.outcome = {
            state: 'failed',
            error: {
              code: 'BODY_INCOMPLETE',
              message: 'the connection was lost and the spooled body was already dropped',
            },
            bodyBytes: job.sendOffset,
          };
          job.sendOffset = spool.produced;
          continue;
        }
        const parts = await spool.read(
          job.sendOffset,
          Math.min(CHANNEL_LIMITS.chunkBytes, window - job.sendOffset),
        );
        if (job.epoch !== epoch) return;
        // The header, then the parts copied once into the frame.
        const header = encodeBodyFrame(FRAME_KIND.responseBody, job.jobId, job.sendOffset, EMPTY);
        const frame = Buffer.concat([header, ...parts]);
        job.sendOffset += frame.length - header.length;
        if (!(await channel.sendBinary(frame))) return;
        continue;
      }
      if (job.outcome && spool.complete && job.sendOffset >= spool.produced) {
        channel.send({ type: 'job.end', jobId: job.jobId, ...job.outcome });
        return;
      }
      await spool.changed();
    }
  }

  /** After a reconnect, the control plane says where to resend from. */
  private resume(jobId: string, offset: number): void {
    const job = this.jobs.get(jobId);
    if (!job) return;
    job.epoch++;
    job.awaitingResume = false;
    job.sendOffset = offset;
    job.spool.confirm(offset);
    if (job.head) this.options.channel.send({ type: 'job.head', jobId, ...job.head });
    this.upload(job);
  }

  private async acknowledged(jobId: string): Promise<void> {
    this.options.store.journal.ack(jobId);
    const job = this.jobs.get(jobId);
    if (!job) return;
    if (!job.outcome) {
      // The control plane ended it (timed out or cancelled): stop the request.
      job.controller.abort(new OutpostError('CANCELLED', 'the control plane ended this job'));
      return;
    }
    this.jobs.delete(jobId);
    job.epoch++;
    job.spool.poke();
    await job.spool.remove();
  }

  /** The connection came back: uploads wait for `job.resume`, which the hello triggers. */
  connectionChanged(): void {
    for (const job of this.jobs.values()) {
      // A request body cannot resume across connections: the request must fail, not go out cut.
      if (job.requestBody?.open) {
        job.requestBody.fail(
          new OutpostError(
            'REQUEST_FAILED',
            'the connection was lost while the request body arrived',
          ),
        );
      }
      job.epoch++;
      job.awaitingResume = true;
      job.spool.poke();
    }
  }

  /**
   * Graceful stop: no new jobs; running ones get until `deadlineMs` to finish, then are
   * aborted and reported as AGENT_SHUTDOWN.
   */
  async drain(deadlineMs: number): Promise<void> {
    this.draining = true;
    const until = Date.now() + deadlineMs;
    while (this.running > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    for (const job of this.jobs.values()) {
      if (!job.outcome)
        job.controller.abort(new OutpostError('AGENT_SHUTDOWN', 'the terminal is shutting down'));
    }
    const settle = Date.now() + 2000;
    while (this.running > 0 && Date.now() < settle) await new Promise((r) => setTimeout(r, 50));
    // Let finished results reach the control plane, and be acknowledged, before the socket
    // closes: an unacknowledged result is only sent again when the agent next starts.
    const flush = Date.now() + 3000;
    while (this.jobs.size > 0 && this.options.channel.connected && Date.now() < flush) {
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Closes pooled connections. */
  async close(): Promise<void> {
    await this.executor.close();
  }
}
