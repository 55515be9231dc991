/**
 * Jobs as stored. Every state change is written here before anything acts on it; transitions
 * out of a final state are refused by the WHERE clauses, so a stale result never overwrites.
 */
import type Database from 'better-sqlite3';

import type { ErrorBody } from '../../shared/errors.js';
import type { ResponseHeaders } from '../../shared/executor/headers.js';
import type { JobRequest, JobState } from '../../shared/jobs.js';
import type { Db } from './database.js';
import { assertPageCursor } from './page-cursor.js';

type Statement = Database.Statement<unknown[]>;

/**
 * Statements prepared once per database: preparing costs more than running these small
 * statements, and jobs run several of them per state change.
 */
const prepared = new WeakMap<Db, Map<string, Statement>>();

function stmt(db: Db, sql: string): Statement {
  let cache = prepared.get(db);
  if (!cache) {
    cache = new Map();
    prepared.set(db, cache);
  }
  let s = cache.get(sql);
  if (!s) {
    s = db.prepare(sql);
    cache.set(sql, s);
  }
  return s;
}

/** A job as stored. */
export interface JobRecord {
  id: string;
  workspaceId: string;
  accountId: string;
  terminalId: string | null;
  state: JobState;
  request: JobRequest;
  requestBodyUpload: boolean;
  idempotencyKey: string | null;
  createdAt: string;
  deadlineAt: string;
  dispatchedAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  responseStatus: number | null;
  responseHeaders: ResponseHeaders | null;
  bodyBytes: number;
  error: ErrorBody | null;
}

interface Row {
  id: string;
  workspace_id: string;
  account_id: string;
  terminal_id: string | null;
  state: JobState;
  request: string;
  request_body_upload: number;
  idempotency_key: string | null;
  created_at: string;
  deadline_at: string;
  dispatched_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  response_status: number | null;
  response_headers: string | null;
  body_bytes: number;
  error_code: string | null;
  error_message: string | null;
}

function fromRow(r: Row): JobRecord {
  return {
    id: r.id,
    workspaceId: r.workspace_id,
    accountId: r.account_id,
    terminalId: r.terminal_id,
    state: r.state,
    request: JSON.parse(r.request) as JobRequest,
    requestBodyUpload: r.request_body_upload === 1,
    idempotencyKey: r.idempotency_key,
    createdAt: r.created_at,
    deadlineAt: r.deadline_at,
    dispatchedAt: r.dispatched_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    responseStatus: r.response_status,
    responseHeaders: r.response_headers
      ? (JSON.parse(r.response_headers) as ResponseHeaders)
      : null,
    bodyBytes: r.body_bytes,
    error: r.error_code
      ? ({ code: r.error_code, message: r.error_message ?? '' } as ErrorBody)
      : null,
  };
}

const FINAL = "('succeeded','failed','cancelled','timed_out')";

/**
 * The columns of a job record: every column but `body_inline`, which only the body's readers
 * fetch (a job is read several times on its way; its body need not be copied each time).
 */
const COLUMNS = `id, workspace_id, account_id, terminal_id, state, request, request_body_upload,
  idempotency_key, created_at, deadline_at, dispatched_at, started_at, finished_at, response_status,
  response_headers, body_bytes, error_code, error_message`;

/** Inserts a queued job. */
export function insertJob(
  db: Db,
  j: Pick<
    JobRecord,
    | 'id'
    | 'workspaceId'
    | 'accountId'
    | 'terminalId'
    | 'request'
    | 'requestBodyUpload'
    | 'idempotencyKey'
    | 'deadlineAt'
  >,
): JobRecord {
  const createdAt = new Date().toISOString();
  stmt(
    db,
    `INSERT INTO jobs (id, workspace_id, account_id, terminal_id, state, request, request_body_upload, idempotency_key,
     created_at, deadline_at) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)`,
  ).run(
    j.id,
    j.workspaceId,
    j.accountId,
    j.terminalId,
    JSON.stringify(j.request),
    j.requestBodyUpload ? 1 : 0,
    j.idempotencyKey,
    createdAt,
    j.deadlineAt,
  );
  // The record as stored, without reading it back (every job is created on the request's path).
  return {
    ...j,
    state: 'queued',
    createdAt,
    dispatchedAt: null,
    startedAt: null,
    finishedAt: null,
    responseStatus: null,
    responseHeaders: null,
    bodyBytes: 0,
    error: null,
  };
}

/** A job of a workspace, or undefined. */
export function getJob(db: Db, workspaceId: string, id: string): JobRecord | undefined {
  const r = stmt(db, `SELECT ${COLUMNS} FROM jobs WHERE id = ? AND workspace_id = ?`).get(
    id,
    workspaceId,
  ) as Row | undefined;
  return r ? fromRow(r) : undefined;
}

/** A job by id alone (internal: the dispatcher and the agent channel). */
export function getJobById(db: Db, id: string): JobRecord | undefined {
  const r = stmt(db, `SELECT ${COLUMNS} FROM jobs WHERE id = ?`).get(id) as Row | undefined;
  return r ? fromRow(r) : undefined;
}

/** The job created earlier with the same idempotency key within 24 hours, if any. */
export function findByIdempotencyKey(
  db: Db,
  workspaceId: string,
  key: string,
): JobRecord | undefined {
  const r = stmt(
    db,
    `SELECT ${COLUMNS} FROM jobs WHERE workspace_id = ? AND idempotency_key = ?`,
  ).get(workspaceId, key) as Row | undefined;
  if (!r) return undefined;
  if (Date.parse(r.created_at) < Date.now() - 24 * 3600_000) {
    // Older than the window: the key may be used again.
    stmt(db, 'UPDATE jobs SET idempotency_key = NULL WHERE id = ?').run(r.id);
    return undefined;
  }
  return fromRow(r);
}

/** Jobs of a workspace, newest first, before a cursor. */
export function listJobs(
  db: Db,
  workspaceId: string,
  before: string | null,
  limit: number,
): JobRecord[] {
  assertPageCursor(db, 'jobs', workspaceId, before);
  const rows = stmt(
    db,
    `SELECT ${COLUMNS} FROM jobs WHERE workspace_id = ? AND (? IS NULL OR rowid < (SELECT rowid FROM jobs WHERE id = ?))
       ORDER BY rowid DESC LIMIT ?`,
  ).all(workspaceId, before, before, limit) as Row[];
  return rows.map(fromRow);
}

/** Queued jobs of a terminal, oldest first. */
export function queuedJobsOfTerminal(db: Db, terminalId: string, limit: number): JobRecord[] {
  return (
    stmt(
      db,
      `SELECT ${COLUMNS} FROM jobs WHERE terminal_id = ? AND state = 'queued' ORDER BY rowid LIMIT ?`,
    ).all(terminalId, limit) as Row[]
  ).map(fromRow);
}

/** Number of jobs of a terminal that are queued (for the bounded queue). */
export function countQueued(db: Db, terminalId: string): number {
  return (
    stmt(db, "SELECT COUNT(*) AS n FROM jobs WHERE terminal_id = ? AND state = 'queued'").get(
      terminalId,
    ) as {
      n: number;
    }
  ).n;
}

/** Jobs that are not final (for deadlines and for recovery after a restart). */
export function openJobs(db: Db): JobRecord[] {
  return (
    stmt(
      db,
      `SELECT ${COLUMNS} FROM jobs WHERE state NOT IN ${FINAL} ORDER BY rowid`,
    ).all() as Row[]
  ).map(fromRow);
}

/** Jobs of a terminal in flight (dispatched or running). */
export function inFlightJobsOfTerminal(db: Db, terminalId: string): JobRecord[] {
  return (
    stmt(
      db,
      `SELECT ${COLUMNS} FROM jobs WHERE terminal_id = ? AND state IN ('dispatched','running') ORDER BY rowid`,
    ).all(terminalId) as Row[]
  ).map(fromRow);
}

/** Moves a job between non-final states; false when it was not in `from`. */
export function transitionJob(
  db: Db,
  id: string,
  from: JobState[],
  to: 'queued' | 'dispatched' | 'running',
): boolean {
  const now = new Date().toISOString();
  const column = to === 'dispatched' ? 'dispatched_at' : to === 'running' ? 'started_at' : null;
  const stamp = column ? `, ${column} = COALESCE(${column}, ?)` : '';
  const states = from.map(() => '?').join(',');
  const sql = `UPDATE jobs SET state = ?${stamp} WHERE id = ? AND state IN (${states})`;
  const args = column ? [to, now, id, ...from] : [to, id, ...from];
  return stmt(db, sql).run(...args).changes > 0;
}

/**
 * Stores the head of the target's answer (only while the job is not final); a job still
 * `dispatched` becomes `running` in the same statement, since a head means it ran.
 */
export function recordResponseHead(
  db: Db,
  id: string,
  status: number,
  headers: ResponseHeaders,
): boolean {
  return (
    stmt(
      db,
      `UPDATE jobs SET response_status = ?, response_headers = ?,
         started_at = CASE WHEN state = 'dispatched' THEN COALESCE(started_at, ?) ELSE started_at END,
         state = CASE WHEN state = 'dispatched' THEN 'running' ELSE state END
       WHERE id = ? AND state NOT IN ${FINAL}`,
    ).run(status, JSON.stringify(headers), new Date().toISOString(), id).changes > 0
  );
}

/**
 * Ends a job; false when it was already final (a stale or duplicate result). `inlineBody` is a
 * body held only in memory so far: it is stored in the same statement as the final state.
 */
export function finishJob(
  db: Db,
  id: string,
  state: 'succeeded' | 'failed' | 'cancelled' | 'timed_out',
  error: ErrorBody | null,
  bodyBytes: number | null,
  inlineBody: Buffer | null = null,
): boolean {
  return (
    stmt(
      db,
      `UPDATE jobs SET state = ?, error_code = ?, error_message = ?, body_bytes = COALESCE(?, body_bytes),
         finished_at = ?, body_inline = ? WHERE id = ? AND state NOT IN ${FINAL}`,
    ).run(
      state,
      error?.code ?? null,
      error?.message ?? null,
      bodyBytes,
      new Date().toISOString(),
      inlineBody,
      id,
    ).changes > 0
  );
}

/** The body stored with a job when it ended, or undefined when it has none there. */
export function getInlineBody(db: Db, id: string): Buffer | undefined {
  const r = stmt(db, 'SELECT body_inline AS b FROM jobs WHERE id = ?').get(id) as
    { b: Buffer | null } | undefined;
  return r?.b ?? undefined;
}

/** The terminal and state of a job, read without the rest of its row (checked per message). */
export function getJobOwnerState(
  db: Db,
  id: string,
): { terminalId: string | null; state: JobState } | undefined {
  const r = stmt(db, 'SELECT terminal_id AS t, state AS s FROM jobs WHERE id = ?').get(id) as
    { t: string | null; s: JobState } | undefined;
  return r ? { terminalId: r.t, state: r.s } : undefined;
}
