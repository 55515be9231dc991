/**
 * The agent's job journal: every job id is recorded before its request goes out, so a job
 * delivered twice runs once, and a result stays here until the control plane acknowledges it.
 */
import type Database from 'better-sqlite3';

import type { ErrorBody } from '../shared/errors.js';
import type { ResponseHeaders } from '../shared/executor/headers.js';

/** One journal entry: a job the agent received. */
export interface JournalEntry {
  jobId: string;
  accountId: string;
  state: 'running' | 'finished';
  receivedAt: string;
  finishedAt: string | null;
  outcomeState: 'succeeded' | 'failed' | 'cancelled' | 'timed_out' | null;
  error: ErrorBody | null;
  status: number | null;
  headers: ResponseHeaders | null;
  bodyBytes: number;
  acked: boolean;
  /** The body of a finished job that never left memory, else null (it is in spool files). */
  body: Buffer | null;
}

/** The journal table of the agent's store. */
export class JobJournal {
  private readonly statements = new Map<string, Database.Statement<unknown[]>>();
  private pendingAcks: string[] = [];
  private ackTimer: NodeJS.Timeout | undefined;

  constructor(private readonly db: Database.Database) {}

  /**
   * A journal statement, prepared once: jobs run several of them each, and preparing costs more
   * than running them.
   */
  private statement(sql: string): Database.Statement<unknown[]> {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  /**
   * Records a job before it runs. Returns false when the job id is already in the journal: a
   * job delivered twice runs once.
   */
  start(jobId: string, accountId: string): boolean {
    const res = this.statement(
      "INSERT OR IGNORE INTO journal (job_id, account_id, state, received_at) VALUES (?, ?, 'running', ?)",
    ).run(jobId, accountId, new Date().toISOString());
    return res.changes === 1;
  }

  /** True when a job is in the journal (it ran, or runs, here). */
  has(jobId: string): boolean {
    return this.statement('SELECT 1 FROM journal WHERE job_id = ?').get(jobId) !== undefined;
  }

  /**
   * Records how a job ended (before the result is sent), with the head of the target's answer
   * and, when the body never left memory, the body: a result not yet acknowledged is resent from
   * here after a restart. (A job still running at a restart is not resent, so the head is only
   * needed here.)
   */
  finish(
    jobId: string,
    outcome: { state: JournalEntry['outcomeState']; error: ErrorBody | null; bodyBytes: number },
    head: { status: number; headers: ResponseHeaders } | null = null,
    body: Buffer | null = null,
  ): void {
    this.statement(
      `UPDATE journal SET state = 'finished', finished_at = ?, outcome_state = ?, error = ?, body_bytes = ?,
         status = COALESCE(?, status), headers = COALESCE(?, headers), body = ?
       WHERE job_id = ? AND state = 'running'`,
    ).run(
      new Date().toISOString(),
      outcome.state,
      outcome.error ? JSON.stringify(outcome.error) : null,
      outcome.bodyBytes,
      head?.status ?? null,
      head ? JSON.stringify(head.headers) : null,
      body,
      jobId,
    );
  }

  /**
   * The control plane stored the result: the job is done for good (its body is let go). Written
   * a few milliseconds later, together with the acknowledgements that came meanwhile, in one
   * commit: an acknowledgement lost in a crash only means the result is sent again after the
   * restart, and the control plane, which holds it, acknowledges it again.
   */
  ack(jobId: string): void {
    this.pendingAcks.push(jobId);
    this.ackTimer ??= setTimeout(() => this.flush(), 5);
  }

  /** Writes the pending acknowledgements (also on close). */
  flush(): void {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    const ids = this.pendingAcks;
    if (ids.length === 0) return;
    this.pendingAcks = [];
    const ack = this.statement('UPDATE journal SET acked = 1, body = NULL WHERE job_id = ?');
    this.db.transaction(() => {
      for (const id of ids) ack.run(id);
    })();
  }

  /** A journal entry. */
  entry(jobId: string): JournalEntry | undefined {
    const r = this.statement('SELECT * FROM journal WHERE job_id = ?').get(jobId) as
      JournalRow | undefined;
    return r ? fromJournalRow(r) : undefined;
  }

  /** Jobs not yet acknowledged: running, or finished with a result to (re)send. */
  unacked(): JournalEntry[] {
    return (
      this.statement('SELECT * FROM journal WHERE acked = 0 ORDER BY rowid').all() as JournalRow[]
    ).map(fromJournalRow);
  }

  /** Counts of finished jobs since a time. */
  counts(since: string): { succeeded: number; failed: number } {
    const rows = this.db
      .prepare(
        `SELECT outcome_state AS s, COUNT(*) AS n FROM journal
         WHERE state = 'finished' AND finished_at >= ? GROUP BY outcome_state`,
      )
      .all(since) as Array<{ s: string; n: number }>;
    let succeeded = 0;
    let failed = 0;
    for (const r of rows) {
      if (r.s === 'succeeded') succeeded += r.n;
      else failed += r.n;
    }
    return { succeeded, failed };
  }

  /** Forgets acknowledged jobs older than a time. */
  prune(before: string): void {
    this.db.prepare('DELETE FROM journal WHERE acked = 1 AND received_at < ?').run(before);
  }
}

interface JournalRow {
  job_id: string;
  account_id: string;
  state: 'running' | 'finished';
  received_at: string;
  finished_at: string | null;
  outcome_state: JournalEntry['outcomeState'];
  error: string | null;
  status: number | null;
  headers: string | null;
  body_bytes: number;
  acked: number;
  body: Buffer | null;
}

function fromJournalRow(r: JournalRow): JournalEntry {
  return {
    jobId: r.job_id,
    accountId: r.account_id,
    state: r.state,
    receivedAt: r.received_at,
    finishedAt: r.finished_at,
    outcomeState: r.outcome_state,
    error: r.error ? (JSON.parse(r.error) as ErrorBody) : null,
    status: r.status,
    headers: r.headers ? (JSON.parse(r.headers) as ResponseHeaders) : null,
    bodyBytes: r.body_bytes,
    acked: r.acked === 1,
    body: r.body,
  };
}
