/** `/v1/terminals`: create (with an enrollment token), list, read, rename, revoke. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';

import { displayNameSchema } from '../../shared/display-text.js';
import { OutpostError } from '../../shared/errors.js';
import { CLOSE_CODES } from '../../shared/protocol/messages.js';
import { recordAudit } from '../store/audit.js';
import {
  createTerminal,
  getTerminal,
  listTerminals,
  revokeTerminal,
  updateTerminal,
} from '../store/terminals.js';
import type { ApiContext } from './api-context.js';
import { parseInput } from './http-errors.js';
import { renderTerminal, renderTerminalSummary } from './render.js';

const createSchema = z.object({ name: displayNameSchema() }).strict();
const patchSchema = z
  .object({
    name: displayNameSchema().optional(),
    maxConcurrency: z.number().int().min(1).max(1000).nullable().optional(),
  })
  .strict();

/** Registers the terminal routes. */
export function terminalRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { db } = ctx;

  app.post('/v1/terminals', async (req, reply) => {
    const caller = ctx.caller(req);
    const body = parseInput(createSchema, req.body);
    const { terminal, enrollmentToken } = createTerminal(
      db,
      caller.workspaceId,
      body.name,
      ctx.enrollmentTtlMs,
    );
    recordAudit(db, caller.workspaceId, {
      actor: caller.keyId,
      action: 'terminal.create',
      targetType: 'terminal',
      targetId: terminal.id,
      details: { name: terminal.name },
    });
    return reply.status(201).send({
      ...renderTerminal(terminal, ctx.presence(terminal.id)),
      enrollmentToken,
      enrollmentExpiresAt: terminal.enrollmentExpiresAt,
    });
  });

  app.get('/v1/terminals', async (req) => {
    const caller = ctx.caller(req);
    const { cursor, limit } = ctx.page(req);
    const rows = listTerminals(db, caller.workspaceId, cursor, limit + 1);
    const items = rows.slice(0, limit).map((t) => renderTerminalSummary(t, ctx.presence(t.id)));
    return { items, nextCursor: rows.length > limit ? rows[limit - 1]!.id : null };
  });

  app.get<{ Params: { id: string } }>('/v1/terminals/:id', async (req) => {
    const caller = ctx.caller(req);
    const t = getTerminal(db, caller.workspaceId, req.params.id);
    if (!t) throw new OutpostError('NOT_FOUND', `terminal ${req.params.id} not found`);
    return renderTerminal(t, ctx.presence(t.id));
  });

  app.patch<{ Params: { id: string } }>('/v1/terminals/:id', async (req) => {
    const caller = ctx.caller(req);
    const body = parseInput(patchSchema, req.body);
    if (getTerminal(db, caller.workspaceId, req.params.id)?.state === 'revoked') {
      throw new OutpostError(
        'CONFLICT',
        `terminal ${req.params.id} was revoked and can no longer be changed`,
      );
    }
    const t = updateTerminal(db, caller.workspaceId, req.params.id, body);
    if (!t) throw new OutpostError('NOT_FOUND', `terminal ${req.params.id} not found`);
    recordAudit(db, caller.workspaceId, {
      actor: caller.keyId,
      action: 'terminal.update',
      targetType: 'terminal',
      targetId: t.id,
      details: body,
    });
    ctx.jobs.pump(t.id);
    return renderTerminal(t, ctx.presence(t.id));
  });

  app.delete<{ Params: { id: string } }>('/v1/terminals/:id', async (req, reply) => {
    const caller = ctx.caller(req);
    const t = getTerminal(db, caller.workspaceId, req.params.id);
    if (!t) throw new OutpostError('NOT_FOUND', `terminal ${req.params.id} not found`);
    if (revokeTerminal(db, caller.workspaceId, t.id)) {
      recordAudit(db, caller.workspaceId, {
        actor: caller.keyId,
        action: 'terminal.revoke',
        targetType: 'terminal',
        targetId: t.id,
        details: {},
      });
    }
    ctx.gateway.disconnect(
      t.id,
      CLOSE_CODES.revoked,
      'TERMINAL_REVOKED: this terminal was revoked',
    );
    return reply.status(204).send();
  });
}
