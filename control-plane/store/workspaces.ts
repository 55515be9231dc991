/** Workspaces and their API keys (stored hashed, compared by hash lookup). */
import { hashToken, newId, newSecretToken } from '../../shared/ids.js';
import type { Db } from './database.js';

/** The id of the workspace with this name, created when missing. */
export function ensureWorkspace(db: Db, name: string): string {
  const found = db.prepare('SELECT id FROM workspaces WHERE name = ?').get(name) as
    { id: string } | undefined;
  if (found) return found.id;
  const id = newId('ws');
  db.prepare('INSERT OR IGNORE INTO workspaces (id, name, created_at) VALUES (?, ?, ?)').run(
    id,
    name,
    new Date().toISOString(),
  );
  return (db.prepare('SELECT id FROM workspaces WHERE name = ?').get(name) as { id: string }).id;
}

/** True when the store holds no workspace yet (first start). */
export function isEmptyStore(db: Db): boolean {
  return (db.prepare('SELECT COUNT(*) AS n FROM workspaces').get() as { n: number }).n === 0;
}

/** Creates an API key for a workspace; returns the key itself (shown once, stored hashed). */
export function createApiKey(db: Db, workspaceId: string): string {
  const key = newSecretToken('opk');
  db.prepare(
    'INSERT INTO api_keys (id, workspace_id, key_hash, created_at) VALUES (?, ?, ?, ?)',
  ).run(newId('key'), workspaceId, hashToken(key), new Date().toISOString());
  return key;
}

/**
 * The workspace of an API key, or undefined. The lookup is by SHA-256 of the key: the hash
 * comparison inside the index leaks nothing useful about the key itself.
 */
export function workspaceOfApiKey(
  db: Db,
  key: string,
): { workspaceId: string; keyId: string } | undefined {
  const row = db
    .prepare('SELECT id, workspace_id FROM api_keys WHERE key_hash = ?')
    .get(hashToken(key)) as { id: string; workspace_id: string } | undefined;
  return row ? { workspaceId: row.workspace_id, keyId: row.id } : undefined;
}
