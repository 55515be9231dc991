/** Accounts: target, auth type, settings, and secrets (encrypted at rest or sealed). */
import type { AuthType, FieldMap } from '../../shared/accounts.js';
import { newId } from '../../shared/ids.js';
import type { Db } from './database.js';
import { assertPageCursor } from './page-cursor.js';

/** An account as stored. Secrets are either encrypted under the master key or sealed. */
export interface AccountRecord {
  id: string;
  workspaceId: string;
  name: string;
  authType: AuthType;
  host: string;
  port: number | null;
  terminalId: string | null;
  settings: FieldMap;
  /** Secrets of a direct account, encrypted at rest under the master key. */
  secretsEncrypted: string | null;
  /** Secrets of a terminal-bound account, as a JWE only its terminal can open. */
  sealedSecrets: string | null;
  secretFields: string[];
  warnings: string[];
  revision: number;
  createdAt: string;
  updatedAt: string;
}

interface Row {
  id: string;
  workspace_id: string;
  name: string;
  auth_type: AuthType;
  host: string;
  port: number | null;
  terminal_id: string | null;
  settings: string;
  secrets_encrypted: string | null;
  sealed_secrets: string | null;
  secret_fields: string;
  warnings: string;
  revision: number;
  created_at: string;
  updated_at: string;
}

function fromRow(r: Row): AccountRecord {
  return {
    id: r.id,
    workspaceId: r.workspace_id,
    name: r.name,
    authType: r.auth_type,
    host: r.host,
    port: r.port,
    terminalId: r.terminal_id,
    settings: JSON.parse(r.settings) as FieldMap,
    secretsEncrypted: r.secrets_encrypted,
    sealedSecrets: r.sealed_secrets,
    secretFields: JSON.parse(r.secret_fields) as string[],
    warnings: JSON.parse(r.warnings) as string[],
    revision: r.revision,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** A new account id (so that secrets can be bound to it before the row exists). */
export function newAccountId(): string {
  return newId('acct');
}

/** Inserts an account. */
export function insertAccount(
  db: Db,
  a: Omit<AccountRecord, 'revision' | 'createdAt' | 'updatedAt'>,
): AccountRecord {
  const now = new Date().toISOString();
  db.prepare(
    `INSERT INTO accounts (id, workspace_id, name, auth_type, host, port, terminal_id, settings, secrets_encrypted,
     sealed_secrets, secret_fields, warnings, revision, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`,
  ).run(
    a.id,
    a.workspaceId,
    a.name,
    a.authType,
    a.host,
    a.port,
    a.terminalId,
    JSON.stringify(a.settings),
    a.secretsEncrypted,
    a.sealedSecrets,
    JSON.stringify(a.secretFields),
    JSON.stringify(a.warnings),
    now,
    now,
  );
  return getAccount(db, a.workspaceId, a.id)!;
}

/** Replaces an account's mutable fields and bumps its revision. */
export function replaceAccount(db: Db, a: AccountRecord): AccountRecord {
  db.prepare(
    `UPDATE accounts SET name = ?, host = ?, port = ?, terminal_id = ?, settings = ?, secrets_encrypted = ?,
     sealed_secrets = ?, secret_fields = ?, warnings = ?, revision = revision + 1, updated_at = ?
     WHERE id = ? AND workspace_id = ?`,
  ).run(
    a.name,
    a.host,
    a.port,
    a.terminalId,
    JSON.stringify(a.settings),
    a.secretsEncrypted,
    a.sealedSecrets,
    JSON.stringify(a.secretFields),
    JSON.stringify(a.warnings),
    new Date().toISOString(),
    a.id,
    a.workspaceId,
  );
  return getAccount(db, a.workspaceId, a.id)!;
}

/** Records what the terminal reported about an account it holds (warnings, secret fields). */
export function recordTerminalAccountStatus(
  db: Db,
  terminalId: string,
  status: { id: string; revision: number; warnings: string[]; secretFields: string[] },
): void {
  db.prepare(
    `UPDATE accounts SET warnings = ?, secret_fields = ? WHERE id = ? AND terminal_id = ? AND revision = ?`,
  ).run(
    JSON.stringify(status.warnings),
    JSON.stringify(status.secretFields),
    status.id,
    terminalId,
    status.revision,
  );
}

/** An account of a workspace, or undefined. */
export function getAccount(db: Db, workspaceId: string, id: string): AccountRecord | undefined {
  const r = db
    .prepare('SELECT * FROM accounts WHERE id = ? AND workspace_id = ?')
    .get(id, workspaceId) as Row | undefined;
  return r ? fromRow(r) : undefined;
}

/** Accounts of a workspace, oldest first, after a cursor. */
export function listAccounts(
  db: Db,
  workspaceId: string,
  after: string | null,
  limit: number,
): AccountRecord[] {
  assertPageCursor(db, 'accounts', workspaceId, after);
  const rows = db
    .prepare(
      `SELECT * FROM accounts WHERE workspace_id = ?
       AND (? IS NULL OR rowid > (SELECT rowid FROM accounts WHERE id = ?))
       ORDER BY rowid LIMIT ?`,
    )
    .all(workspaceId, after, after, limit) as Row[];
  return rows.map(fromRow);
}

/** Accounts bound to a terminal. */
export function accountsOfTerminal(db: Db, terminalId: string): AccountRecord[] {
  return (
    db
      .prepare('SELECT * FROM accounts WHERE terminal_id = ? ORDER BY rowid')
      .all(terminalId) as Row[]
  ).map(fromRow);
}

/** Deletes an account; true when it existed. */
export function deleteAccount(db: Db, workspaceId: string, id: string): boolean {
  return (
    db.prepare('DELETE FROM accounts WHERE id = ? AND workspace_id = ?').run(id, workspaceId)
      .changes > 0
  );
}

/** Encrypted auth state (tokens, cookies) of a direct account. */
export function getAuthState(db: Db, accountId: string): string | undefined {
  const r = db
    .prepare('SELECT state_encrypted FROM auth_state WHERE account_id = ?')
    .get(accountId) as { state_encrypted: string } | undefined;
  return r?.state_encrypted;
}

/** Stores the encrypted auth state of a direct account. */
export function setAuthState(db: Db, accountId: string, encrypted: string): void {
  db.prepare(
    `INSERT INTO auth_state (account_id, state_encrypted, updated_at) VALUES (?, ?, ?)
     ON CONFLICT (account_id) DO UPDATE SET state_encrypted = excluded.state_encrypted,
     updated_at = excluded.updated_at`,
  ).run(accountId, encrypted, new Date().toISOString());
}

/** Forgets the auth state of an account (its secrets changed). */
export function clearAuthState(db: Db, accountId: string): void {
  db.prepare('DELETE FROM auth_state WHERE account_id = ?').run(accountId);
}
