/**
 * API callers waiting on jobs (`?wait=true`, `/body`): woken when a job changes, or only when it
 * ends, and then reading its stored state. The store stays the record; events only wake.
 */
import { EventEmitter } from 'node:events';

import { isFinalState } from '../../shared/jobs.js';
import type { Db } from '../store/database.js';
import { getJobById, type JobRecord } from '../store/jobs.js';

/** Wake-ups per job id. */
export class JobWaiters {
  /** Any change of a job (dispatched, running, head, final), by job id. */
  private readonly events = new EventEmitter();
  /** Only a job's final state, by job id: `?wait=true` callers need no other wake-up. */
  private readonly finals = new EventEmitter();

  constructor(private readonly db: Db) {
    this.events.setMaxListeners(0);
    this.finals.setMaxListeners(0);
  }

  /** A job changed (its state or its answer's head). */
  changedOne(jobId: string): void {
    this.events.emit(jobId);
  }

  /** A job ended. */
  ended(jobId: string): void {
    this.finals.emit(jobId);
  }

  /**
   * Waits until the job changes (any state or head change; with `finalOnly`, its final state
   * only) or the signal aborts, at most `timeoutMs`.
   */
  changed(jobId: string, signal: AbortSignal, timeoutMs = 5000, finalOnly = false): Promise<void> {
    const events = finalOnly ? this.finals : this.events;
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        events.off(jobId, done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, timeoutMs);
      events.on(jobId, done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Waits until the job is final (or the signal aborts) and returns it. */
  async waitFinal(jobId: string, signal: AbortSignal): Promise<JobRecord> {
    for (;;) {
      const job = getJobById(this.db, jobId)!;
      if (isFinalState(job.state) || signal.aborted) return job;
      await this.changed(jobId, signal, 5000, true);
    }
  }

  /** Waits until the job has its answer's head or is final. */
  async waitHead(jobId: string, signal: AbortSignal): Promise<JobRecord> {
    for (;;) {
      const job = getJobById(this.db, jobId)!;
      if (job.responseStatus !== null || isFinalState(job.state) || signal.aborted) return job;
      await this.changed(jobId, signal);
    }
  }
}
