/**
 * Versioned schema migrations of the control plane's SQLite store. Each entry runs once, in
 * order, inside a transaction; never edit a released entry, add a new one.
 */

/** The migrations, by version. */
export const MIGRATIONS: Array<{ version: number; sql: string }> = [
  {
    version: 1,
    sql: `
      CREATE TABLE workspaces (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
      );
      CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL REFERENCES workspaces(id),
        key_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        last_used_at TEXT
      );
      CREATE TABLE terminals (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL REFERENCES workspaces(id),
        name TEXT NOT NULL,
        state TEXT NOT NULL,
        enrollment_token_hash TEXT UNIQUE,
        enrollment_expires_at TEXT,
        signing_jwk TEXT,
        encryption_jwk TEXT,
        max_concurrency INTEGER,
        version TEXT,
        protocol_version INTEGER,
        hostname TEXT,
        os TEXT,
        agent_started_at TEXT,
        last_seen_at TEXT,
        last_heartbeat_at TEXT,
        created_at TEXT NOT NULL,
        enrolled_at TEXT,
        revoked_at TEXT
      );
      CREATE INDEX terminals_ws ON terminals(workspace_id, created_at);
      CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL REFERENCES workspaces(id),
        name TEXT NOT NULL,
        auth_type TEXT NOT NULL,
        host TEXT NOT NULL,
        port INTEGER,
        terminal_id TEXT REFERENCES terminals(id),
        settings TEXT NOT NULL,
        secrets_encrypted TEXT,
        sealed_secrets TEXT,
        secret_fields TEXT NOT NULL,
        warnings TEXT NOT NULL,
        revision INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE INDEX accounts_ws ON accounts(workspace_id, created_at);
      CREATE INDEX accounts_terminal ON accounts(terminal_id);
      CREATE TABLE auth_state (
        account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
        state_encrypted TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL REFERENCES workspaces(id),
        account_id TEXT NOT NULL,
        terminal_id TEXT,
        state TEXT NOT NULL,
        request TEXT NOT NULL,
        request_body_upload INTEGER NOT NULL DEFAULT 0,
        idempotency_key TEXT,
        created_at TEXT NOT NULL,
        deadline_at TEXT NOT NULL,
        dispatched_at TEXT,
        started_at TEXT,
        finished_at TEXT,
        response_status INTEGER,
        response_headers TEXT,
        body_bytes INTEGER NOT NULL DEFAULT 0,
        error_code TEXT,
        error_message TEXT,
        UNIQUE (workspace_id, idempotency_key)
      );
      CREATE INDEX jobs_queue ON jobs(terminal_id, state, created_at);
      CREATE INDEX jobs_ws ON jobs(workspace_id, created_at);
      CREATE TABLE audit_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        workspace_id TEXT NOT NULL,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target_type TEXT NOT NULL,
        target_id TEXT NOT NULL,
        details TEXT NOT NULL
      );
      CREATE INDEX audit_ws ON audit_events(workspace_id, id);
      CREATE TABLE used_token_ids (
        jti TEXT PRIMARY KEY,
        expires_at INTEGER NOT NULL
      );
    `,
  },
  {
    // A body small enough to have stayed in memory is stored with its job when the job ends, in
    // the same statement as the final state, instead of in a file of its own.
    version: 2,
    sql: `ALTER TABLE jobs ADD COLUMN body_inline BLOB;`,
  },
];
