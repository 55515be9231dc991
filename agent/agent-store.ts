/**
 * The agent's local SQLite store: its identity, the accounts it holds (secrets encrypted under
 * the local key), tokens and cookies obtained later, the job journal, the local allowlist, and
 * the live status that `terminal-agent status` reads.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import path from 'node:path';

import type Database from 'better-sqlite3';
import type { JWK } from 'jose';

import type { AccountDescriptor, FieldMap } from '../shared/accounts.js';
import { decryptAtRest, encryptAtRest, type AtRestKey } from '../shared/crypto/aes-gcm.js';
import { registerSecrets } from '../shared/logger.js';
import { loadLocalKey } from './local-key.js';
import { JobJournal } from './job-journal.js';
import { openDatabase } from './sea/native-sqlite.js';

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS accounts (
     id TEXT PRIMARY KEY, descriptor TEXT NOT NULL, secrets_encrypted TEXT, revision INTEGER NOT NULL,
     warnings TEXT NOT NULL DEFAULT '[]', updated_at TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS local_secrets (
     account_id TEXT NOT NULL, field TEXT NOT NULL, value_encrypted TEXT NOT NULL, updated_at TEXT NOT NULL,
     PRIMARY KEY (account_id, field))`,
  `CREATE TABLE IF NOT EXISTS auth_state (account_id TEXT PRIMARY KEY, state_encrypted TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS journal (
     job_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, state TEXT NOT NULL, received_at TEXT NOT NULL,
     finished_at TEXT, outcome_state TEXT, error TEXT, status INTEGER, headers TEXT,
     body_bytes INTEGER NOT NULL DEFAULT 0,
     acked INTEGER NOT NULL DEFAULT 0)`,
  `CREATE INDEX IF NOT EXISTS journal_open ON journal(acked, state)`,
  // Added later (see the constructor): the body of a finished job that never left memory.
  `ALTER TABLE journal ADD COLUMN body BLOB`,
  `CREATE TABLE IF NOT EXISTS allowlist (
     host TEXT NOT NULL, port INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (host, port))`,
  `CREATE TABLE IF NOT EXISTS status (key TEXT PRIMARY KEY, value TEXT)`,
];

/** The agent's identity after enrollment. */
export interface AgentIdentity {
  terminalId: string;
  name: string;
  controlPlaneUrl: string;
  enrolledAt: string;
  signingPrivateJwk: JWK;
  encryptionPrivateJwk: JWK;
  encryptionPublicJwk: JWK;
}

/** A held account: descriptor, secrets (decrypted on demand) and the terminal's warnings. */
export interface HeldAccount {
  descriptor: AccountDescriptor;
  warnings: string[];
}

/** The agent's store. */
export class AgentStore {
  readonly db: Database.Database;
  readonly dataDir: string;
  private readonly key: AtRestKey;
  /** Jobs received, their outcomes, and results not yet acknowledged. */
  readonly journal: JobJournal;

  constructor(dataDir: string) {
    this.dataDir = dataDir;
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    this.key = loadLocalKey(dataDir);
    const file = path.join(dataDir, 'agent.db');
    this.db = openDatabase(file, {}, { cacheRoot: dataDir });
    if (process.platform !== 'win32') chmodSync(file, 0o600);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    const journalColumns = this.db.prepare('PRAGMA table_info(journal)').all() as Array<{
      name: string;
    }>;
    const hasBody = journalColumns.some((c) => c.name === 'body');
    for (const sql of SCHEMA) {
      if (hasBody && sql.startsWith('ALTER TABLE journal ADD COLUMN body ')) continue;
      this.db.exec(sql);
    }
    this.journal = new JobJournal(this.db);
  }

  close(): void {
    this.journal.flush();
    this.db.close();
  }

  private encrypt(value: unknown, context: string): string {
    return encryptAtRest(this.key, JSON.stringify(value), context);
  }

  private decrypt<T>(stored: string, context: string): T {
    return JSON.parse(decryptAtRest([this.key], stored, context)) as T;
  }

  // ---- identity ----

  private meta(key: string): string | undefined {
    return (
      this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as
        { value: string } | undefined
    )?.value;
  }

  /** The identity, or undefined before enrollment. */
  identity(): AgentIdentity | undefined {
    const stored = this.meta('identity');
    return stored ? this.decrypt<AgentIdentity>(stored, 'identity') : undefined;
  }

  /** Public facts of the identity (no keys), readable without decrypting. */
  identitySummary():
    { terminalId: string; name: string; controlPlaneUrl: string; enrolledAt: string } | undefined {
    const s = this.meta('identity-summary');
    return s
      ? (JSON.parse(s) as {
          terminalId: string;
          name: string;
          controlPlaneUrl: string;
          enrolledAt: string;
        })
      : undefined;
  }

  /** Stores a new identity, forgetting everything of a previous enrollment. */
  saveIdentity(identity: AgentIdentity): void {
    this.db.transaction(() => {
      for (const t of ['accounts', 'local_secrets', 'auth_state', 'journal', 'status'])
        this.db.exec(`DELETE FROM ${t}`);
      const put = this.db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
      put.run('identity', this.encrypt(identity, 'identity'));
      put.run(
        'identity-summary',
        JSON.stringify({
          terminalId: identity.terminalId,
          name: identity.name,
          controlPlaneUrl: identity.controlPlaneUrl,
          enrolledAt: identity.enrolledAt,
        }),
      );
    })();
  }

  // ---- accounts ----

  /** Stores an account with its (already opened) secrets encrypted at rest. */
  saveAccount(descriptor: AccountDescriptor, secrets: FieldMap, warnings: string[]): void {
    const stored = { ...descriptor, sealedSecrets: [] };
    this.db
      .prepare(
        `INSERT INTO accounts (id, descriptor, secrets_encrypted, revision, warnings, updated_at)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET descriptor = excluded.descriptor,
         secrets_encrypted = excluded.secrets_encrypted,
         revision = excluded.revision, warnings = excluded.warnings, updated_at = excluded.updated_at`,
      )
      .run(
        descriptor.id,
        JSON.stringify(stored),
        this.encrypt(secrets, `account:${descriptor.id}`),
        descriptor.revision,
        JSON.stringify(warnings),
        new Date().toISOString(),
      );
  }

  /** The revision of a held account, or undefined. */
  accountRevision(id: string): number | undefined {
    return (
      this.db.prepare('SELECT revision FROM accounts WHERE id = ?').get(id) as
        { revision: number } | undefined
    )?.revision;
  }

  /** Forgets an account and everything obtained for it. */
  removeAccount(id: string): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM accounts WHERE id = ?').run(id);
      this.db.prepare('DELETE FROM auth_state WHERE account_id = ?').run(id);
      this.db.prepare('DELETE FROM local_secrets WHERE account_id = ?').run(id);
    })();
  }

  /** Every held account (without secrets). */
  accounts(): HeldAccount[] {
    const rows = this.db
      .prepare('SELECT descriptor, warnings FROM accounts ORDER BY rowid')
      .all() as Array<{
      descriptor: string;
      warnings: string;
    }>;
    return rows.map((r) => ({
      descriptor: JSON.parse(r.descriptor) as AccountDescriptor,
      warnings: JSON.parse(r.warnings) as string[],
    }));
  }

  /** One held account (without secrets), or undefined. */
  account(id: string): HeldAccount | undefined {
    const r = this.db.prepare('SELECT descriptor, warnings FROM accounts WHERE id = ?').get(id) as
      { descriptor: string; warnings: string } | undefined;
    if (!r) return undefined;
    return {
      descriptor: JSON.parse(r.descriptor) as AccountDescriptor,
      warnings: JSON.parse(r.warnings) as string[],
    };
  }

  /** An account's secrets: those from the control plane, overlaid by those set on site. */
  accountSecrets(id: string): FieldMap {
    const row = this.db.prepare('SELECT secrets_encrypted FROM accounts WHERE id = ?').get(id) as
      { secrets_encrypted: string | null } | undefined;
    const base = row?.secrets_encrypted
      ? this.decrypt<FieldMap>(row.secrets_encrypted, `account:${id}`)
      : {};
    const local = this.db
      .prepare('SELECT field, value_encrypted FROM local_secrets WHERE account_id = ?')
      .all(id) as Array<{
      field: string;
      value_encrypted: string;
    }>;
    for (const l of local)
      base[l.field] = this.decrypt<unknown>(l.value_encrypted, `local:${id}:${l.field}`);
    registerSecrets(base);
    return base;
  }

  /** Names of the secret fields the control plane sent (sealed) for an account. */
  controlPlaneSecretFields(id: string): string[] {
    const row = this.db.prepare('SELECT secrets_encrypted FROM accounts WHERE id = ?').get(id) as
      { secrets_encrypted: string | null } | undefined;
    if (!row?.secrets_encrypted) return [];
    return Object.keys(this.decrypt<FieldMap>(row.secrets_encrypted, `account:${id}`)).sort();
  }

  /** Removes a secret set on site; true when there was one. */
  removeLocalSecret(accountId: string, field: string): boolean {
    const res = this.db
      .prepare('DELETE FROM local_secrets WHERE account_id = ? AND field = ?')
      .run(accountId, field);
    if (res.changes > 0)
      this.db.prepare('DELETE FROM auth_state WHERE account_id = ?').run(accountId);
    return res.changes > 0;
  }

  /** Sets a secret on site; it never crosses the network. */
  setLocalSecret(accountId: string, field: string, value: unknown): void {
    registerSecrets(value);
    this.db
      .prepare(
        `INSERT INTO local_secrets (account_id, field, value_encrypted, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (account_id, field) DO UPDATE SET value_encrypted = excluded.value_encrypted,
         updated_at = excluded.updated_at`,
      )
      .run(
        accountId,
        field,
        this.encrypt(value, `local:${accountId}:${field}`),
        new Date().toISOString(),
      );
    this.db.prepare('DELETE FROM auth_state WHERE account_id = ?').run(accountId);
  }

  /** Names of the secret fields set on site for an account. */
  localSecretFields(accountId: string): string[] {
    return (
      this.db
        .prepare('SELECT field FROM local_secrets WHERE account_id = ? ORDER BY field')
        .all(accountId) as Array<{
        field: string;
      }>
    ).map((r) => r.field);
  }

  /** Records warnings found for an account. */
  setAccountWarnings(id: string, warnings: string[]): void {
    this.db
      .prepare('UPDATE accounts SET warnings = ? WHERE id = ?')
      .run(JSON.stringify(warnings), id);
  }

  // ---- auth state (tokens, cookies) ----

  getAuthState(accountId: string): FieldMap | undefined {
    const row = this.db
      .prepare('SELECT state_encrypted FROM auth_state WHERE account_id = ?')
      .get(accountId) as { state_encrypted: string } | undefined;
    if (!row) return undefined;
    const state = this.decrypt<FieldMap>(row.state_encrypted, `auth-state:${accountId}`);
    registerSecrets(state);
    return state;
  }

  setAuthState(accountId: string, state: FieldMap): void {
    registerSecrets(state);
    this.db
      .prepare(
        `INSERT INTO auth_state (account_id, state_encrypted) VALUES (?, ?)
         ON CONFLICT (account_id) DO UPDATE SET state_encrypted = excluded.state_encrypted`,
      )
      .run(accountId, this.encrypt(state, `auth-state:${accountId}`));
  }

  // ---- allowlist ----

  allowlist(): Array<{ host: string; port: number | null }> {
    return (
      this.db.prepare('SELECT host, port FROM allowlist ORDER BY host, port').all() as Array<{
        host: string;
        port: number;
      }>
    ).map((r) => ({ host: r.host, port: r.port === 0 ? null : r.port }));
  }

  allow(host: string, port: number | null): void {
    this.db
      .prepare('INSERT OR IGNORE INTO allowlist (host, port) VALUES (?, ?)')
      .run(host, port ?? 0);
  }

  disallow(host: string, port: number | null): boolean {
    return (
      this.db.prepare('DELETE FROM allowlist WHERE host = ? AND port = ?').run(host, port ?? 0)
        .changes > 0
    );
  }

  // ---- live status ----

  /**
   * Claims the data dir for this process, atomically (one SQLite write transaction): refused
   * while another agent process recorded here is still alive. Two agents on one data dir would
   * replace each other's connection and run each other's journal.
   */
  claimRun(
    pid: number,
    startedAt: string,
    alive: (pid: number, startedAt: string | null) => boolean,
  ): number | null {
    return this.db
      .transaction(() => {
        const s = this.status();
        const holder = s.pid ? Number(s.pid) : null;
        if (holder !== null && holder !== pid && !s.stoppedAt && alive(holder, s.startedAt ?? null))
          return holder;
        this.setStatus({ pid, startedAt, stoppedAt: null, connected: 0, connectedSince: null });
        return null;
      })
      .immediate();
  }

  setStatus(values: Record<string, string | number | null>): void {
    const put = this.db.prepare('INSERT OR REPLACE INTO status (key, value) VALUES (?, ?)');
    this.db.transaction(() => {
      for (const [k, v] of Object.entries(values)) put.run(k, v === null ? null : String(v));
    })();
  }

  status(): Record<string, string | null> {
    const rows = this.db.prepare('SELECT key, value FROM status').all() as Array<{
      key: string;
      value: string | null;
    }>;
    return Object.fromEntries(rows.map((r) => [r.key, r.value]));
  }
}

/** A journal entry (kept here for the modules that import it from the store). */
export type { JournalEntry } from './job-journal.js';
