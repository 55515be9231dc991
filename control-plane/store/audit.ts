/** The audit trail: who did what to which object, and when. Never a secret. */
import { redactValue } from '../../shared/logger.js';
import type { Db } from './database.js';

/** One audit event as listed by the API. */
export interface AuditEvent {
  id: number;
  at: string;
  actor: string;
  action: string;
  targetType: string;
  targetId: string;
  details: Record<string, unknown>;
}

/** Records an event; `details` are redacted first as a second line of defence. */
export function recordAudit(
  db: Db,
  workspaceId: string,
  event: {
    actor: string;
    action: string;
    targetType: string;
    targetId: string;
    details?: Record<string, unknown>;
  },
): void {
  db.prepare(
    `INSERT INTO audit_events (workspace_id, at, actor, action, target_type, target_id, details)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    workspaceId,
    new Date().toISOString(),
    event.actor,
    event.action,
    event.targetType,
    event.targetId,
    JSON.stringify(redactValue(event.details ?? {})),
  );
}

/** Events of a workspace after a cursor, oldest first. */
export function listAudit(db: Db, workspaceId: string, after: number, limit: number): AuditEvent[] {
  const rows = db
    .prepare('SELECT * FROM audit_events WHERE workspace_id = ? AND id > ? ORDER BY id LIMIT ?')
    .all(workspaceId, after, limit) as Array<{
    id: number;
    at: string;
    actor: string;
    action: string;
    target_type: string;
    target_id: string;
    details: string;
  }>;
  return rows.map((r) => ({
    id: r.id,
    at: r.at,
    actor: r.actor,
    action: r.action,
    targetType: r.target_type,
    targetId: r.target_id,
    details: JSON.parse(r.details) as Record<string, unknown>,
  }));
}
