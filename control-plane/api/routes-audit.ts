/** `GET /v1/audit`: the workspace's audit trail, oldest first, paged by cursor. */
import type { FastifyInstance } from 'fastify';

import { OutpostError } from '../../shared/errors.js';
import { listAudit } from '../store/audit.js';
import type { ApiContext } from './api-context.js';

/** Registers the audit route. */
export function auditRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/v1/audit', async (req) => {
    const caller = ctx.caller(req);
    const { cursor, limit } = ctx.page(req);
    const after = cursor === null ? 0 : Number(cursor);
    if (!Number.isInteger(after) || after < 0) {
      throw new OutpostError('VALIDATION_FAILED', 'cursor must be a cursor from a previous page', {
        field: 'cursor',
      });
    }
    const rows = listAudit(ctx.db, caller.workspaceId, after, limit + 1);
    const items = rows.slice(0, limit);
    return { items, nextCursor: rows.length > limit ? String(items.at(-1)!.id) : null };
  });
}
