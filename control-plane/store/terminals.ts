/** Terminals: enrollment, identity keys, liveness. Every query is scoped to a workspace. */
import type { JWK } from 'jose';

import { hashToken, newId, newSecretToken } from '../../shared/ids.js';
import type { Db } from './database.js';
import { assertPageCursor } from './page-cursor.js';

/** A terminal's lifecycle: pending (not enrolled) → active → revoked. */
export type TerminalState = 'pending' | 'active' | 'revoked';

/** A terminal as stored. */
export interface TerminalRecord {
  id: string;
  workspaceId: string;
  name: string;
  state: TerminalState;
  enrollmentExpiresAt: string | null;
  signingJwk: JWK | null;
  encryptionJwk: JWK | null;
  maxConcurrency: number | null;
  version: string | null;
  protocolVersion: number | null;
  hostname: string | null;
  os: string | null;
  agentStartedAt: string | null;
  lastSeenAt: string | null;
  lastHeartbeatAt: string | null;
  createdAt: string;
  enrolledAt: string | null;
  revokedAt: string | null;
}

interface Row {
  id: string;
  workspace_id: string;
  name: string;
  state: TerminalState;
  enrollment_expires_at: string | null;
  signing_jwk: string | null;
  encryption_jwk: string | null;
  max_concurrency: number | null;
  version: string | null;
  protocol_version: number | null;
  hostname: string | null;
  os: string | null;
  agent_started_at: string | null;
  last_seen_at: string | null;
  last_heartbeat_at: string | null;
  created_at: string;
  enrolled_at: string | null;
  revoked_at: string | null;
}

function fromRow(r: Row): TerminalRecord {
  return {
    id: r.id,
    workspaceId: r.workspace_id,
    name: r.name,
    state: r.state,
    enrollmentExpiresAt: r.enrollment_expires_at,
    signingJwk: r.signing_jwk ? (JSON.parse(r.signing_jwk) as JWK) : null,
    encryptionJwk: r.encryption_jwk ? (JSON.parse(r.encryption_jwk) as JWK) : null,
    maxConcurrency: r.max_concurrency,
    version: r.version,
    protocolVersion: r.protocol_version,
    hostname: r.hostname,
    os: r.os,
    agentStartedAt: r.agent_started_at,
    lastSeenAt: r.last_seen_at,
    lastHeartbeatAt: r.last_heartbeat_at,
    createdAt: r.created_at,
    enrolledAt: r.enrolled_at,
    revokedAt: r.revoked_at,
  };
}

/** Creates a pending terminal and its one-time enrollment token (returned once, stored hashed). */
export function createTerminal(
  db: Db,
  workspaceId: string,
  name: string,
  ttlMs: number,
): { terminal: TerminalRecord; enrollmentToken: string } {
  const id = newId('term');
  const token = newSecretToken('opet');
  const now = new Date();
  db.prepare(
    `INSERT INTO terminals (id, workspace_id, name, state, enrollment_token_hash, enrollment_expires_at, created_at)
     VALUES (?, ?, ?, 'pending', ?, ?, ?)`,
  ).run(
    id,
    workspaceId,
    name,
    hashToken(token),
    new Date(now.getTime() + ttlMs).toISOString(),
    now.toISOString(),
  );
  return { terminal: getTerminal(db, workspaceId, id)!, enrollmentToken: token };
}

/** A terminal of a workspace, or undefined (another workspace's terminal is not found). */
export function getTerminal(db: Db, workspaceId: string, id: string): TerminalRecord | undefined {
  const r = db
    .prepare('SELECT * FROM terminals WHERE id = ? AND workspace_id = ?')
    .get(id, workspaceId) as Row | undefined;
  return r ? fromRow(r) : undefined;
}

/** A terminal by id alone: only for the agent channel, which proves the terminal's own key. */
export function getTerminalById(db: Db, id: string): TerminalRecord | undefined {
  const r = db.prepare('SELECT * FROM terminals WHERE id = ?').get(id) as Row | undefined;
  return r ? fromRow(r) : undefined;
}

/** Terminals of a workspace, oldest first, after a cursor (an id). */
export function listTerminals(
  db: Db,
  workspaceId: string,
  after: string | null,
  limit: number,
): TerminalRecord[] {
  assertPageCursor(db, 'terminals', workspaceId, after);
  const rows = db
    .prepare(
      `SELECT * FROM terminals WHERE workspace_id = ?
       AND (? IS NULL OR rowid > (SELECT rowid FROM terminals WHERE id = ?))
       ORDER BY rowid LIMIT ?`,
    )
    .all(workspaceId, after, after, limit) as Row[];
  return rows.map(fromRow);
}

/**
 * Spends an enrollment token: the matching pending terminal becomes active with the agent's
 * public keys. Returns undefined when the token is unknown, used or expired; a token works once.
 */
export function spendEnrollmentToken(
  db: Db,
  token: string,
  keys: { signingJwk: JWK; encryptionJwk: JWK },
  now = new Date(),
): TerminalRecord | 'expired' | undefined {
  return db.transaction(() => {
    const r = db
      .prepare("SELECT * FROM terminals WHERE enrollment_token_hash = ? AND state = 'pending'")
      .get(hashToken(token)) as Row | undefined;
    if (!r) return undefined;
    if (!r.enrollment_expires_at || Date.parse(r.enrollment_expires_at) < now.getTime())
      return 'expired';
    db.prepare(
      `UPDATE terminals SET state = 'active', enrollment_token_hash = NULL, signing_jwk = ?, encryption_jwk = ?,
       enrolled_at = ? WHERE id = ?`,
    ).run(
      JSON.stringify(keys.signingJwk),
      JSON.stringify(keys.encryptionJwk),
      now.toISOString(),
      r.id,
    );
    return getTerminalById(db, r.id);
  })();
}

/** Renames or changes the concurrency limit of a terminal. */
export function updateTerminal(
  db: Db,
  workspaceId: string,
  id: string,
  patch: { name?: string; maxConcurrency?: number | null },
): TerminalRecord | undefined {
  const current = getTerminal(db, workspaceId, id);
  if (!current) return undefined;
  db.prepare(
    'UPDATE terminals SET name = ?, max_concurrency = ? WHERE id = ? AND workspace_id = ?',
  ).run(
    patch.name ?? current.name,
    patch.maxConcurrency === undefined ? current.maxConcurrency : patch.maxConcurrency,
    id,
    workspaceId,
  );
  return getTerminal(db, workspaceId, id);
}

/** Revokes a terminal for good: its keys stop working and a pending token is voided. */
export function revokeTerminal(db: Db, workspaceId: string, id: string): boolean {
  const res = db
    .prepare(
      `UPDATE terminals SET state = 'revoked', revoked_at = ?, enrollment_token_hash = NULL
       WHERE id = ? AND workspace_id = ? AND state != 'revoked'`,
    )
    .run(new Date().toISOString(), id, workspaceId);
  return res.changes > 0;
}

/** Records what a connecting agent says about itself. */
export function recordAgentHello(
  db: Db,
  id: string,
  hello: {
    version: string;
    protocolVersion: number;
    hostname: string;
    os: string;
    startedAt: string;
  },
): void {
  const now = new Date().toISOString();
  db.prepare(
    `UPDATE terminals SET version = ?, protocol_version = ?, hostname = ?, os = ?, agent_started_at = ?,
     last_seen_at = ?, last_heartbeat_at = ? WHERE id = ?`,
  ).run(
    hello.version,
    hello.protocolVersion,
    hello.hostname,
    hello.os,
    hello.startedAt,
    now,
    now,
    id,
  );
}

/** Records a heartbeat. */
export function recordHeartbeat(db: Db, id: string, at = new Date()): void {
  const iso = at.toISOString();
  db.prepare('UPDATE terminals SET last_seen_at = ?, last_heartbeat_at = ? WHERE id = ?').run(
    iso,
    iso,
    id,
  );
}

/** Remembers a connection token id until it expires, refusing one seen before (no replay). */
export function spendTokenId(db: Db, jti: string, expiresAtSec: number): boolean {
  const nowSec = Math.floor(Date.now() / 1000);
  db.prepare('DELETE FROM used_token_ids WHERE expires_at < ?').run(nowSec);
  const res = db
    .prepare('INSERT OR IGNORE INTO used_token_ids (jti, expires_at) VALUES (?, ?)')
    .run(jti, expiresAtSec);
  return res.changes === 1;
}
