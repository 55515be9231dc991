/** `/v1/accounts`: connected accounts. Answers carry secret field names, never values. */
import type { FastifyInstance } from 'fastify';

import { OutpostError } from '../../shared/errors.js';
import { createAccountSchema, patchAccountSchema } from '../accounts/account-service.js';
import { deleteAccount, getAccount, listAccounts, type AccountRecord } from '../store/accounts.js';
import { recordAudit } from '../store/audit.js';
import type { ApiContext } from './api-context.js';
import { parseInput } from './http-errors.js';
import { renderAccount } from './render.js';

/** Registers the account routes. */
export function accountRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { db } = ctx;
  const online = (a: AccountRecord) => a.terminalId === null || ctx.gateway.isOnline(a.terminalId);
  const audit = (
    workspaceId: string,
    actor: string,
    action: string,
    a: AccountRecord,
    details: object,
  ) =>
    recordAudit(db, workspaceId, {
      actor,
      action,
      targetType: 'account',
      targetId: a.id,
      details: { ...details },
    });

  app.post('/v1/accounts', async (req, reply) => {
    const caller = ctx.caller(req);
    const body = parseInput(createAccountSchema, req.body);
    const account = await ctx.accounts.create(caller.workspaceId, body);
    audit(caller.workspaceId, caller.keyId, 'account.create', account, {
      name: account.name,
      authType: account.authType,
      host: account.host,
      terminalId: account.terminalId,
      secretFields: account.secretFields,
    });
    if (account.terminalId)
      ctx.gateway.pushAccount(account.terminalId, ctx.accounts.descriptor(account));
    return reply.status(201).send(renderAccount(account, online(account)));
  });

  app.get('/v1/accounts', async (req) => {
    const caller = ctx.caller(req);
    const { cursor, limit } = ctx.page(req);
    const rows = listAccounts(db, caller.workspaceId, cursor, limit + 1);
    return {
      items: rows.slice(0, limit).map((a) => renderAccount(a, online(a))),
      nextCursor: rows.length > limit ? rows[limit - 1]!.id : null,
    };
  });

  app.get<{ Params: { id: string } }>('/v1/accounts/:id', async (req) => {
    const caller = ctx.caller(req);
    const a = getAccount(db, caller.workspaceId, req.params.id);
    if (!a) throw new OutpostError('NOT_FOUND', `account ${req.params.id} not found`);
    return renderAccount(a, online(a));
  });

  app.patch<{ Params: { id: string } }>('/v1/accounts/:id', async (req) => {
    const caller = ctx.caller(req);
    const body = parseInput(patchAccountSchema, req.body);
    const before = getAccount(db, caller.workspaceId, req.params.id);
    const account = await ctx.accounts.patch(caller.workspaceId, req.params.id, body);
    audit(caller.workspaceId, caller.keyId, 'account.update', account, {
      fields: Object.keys(body),
      secretFieldsChanged: body.secrets
        ? Object.keys(body.secrets)
        : body.sealedSecrets
          ? ['(sealed)']
          : [],
      terminalId: account.terminalId,
    });
    if (before?.terminalId && before.terminalId !== account.terminalId) {
      ctx.gateway.removeAccount(before.terminalId, account.id);
    }
    if (account.terminalId)
      ctx.gateway.pushAccount(account.terminalId, ctx.accounts.descriptor(account));
    return renderAccount(account, online(account));
  });

  app.delete<{ Params: { id: string } }>('/v1/accounts/:id', async (req, reply) => {
    const caller = ctx.caller(req);
    const a = getAccount(db, caller.workspaceId, req.params.id);
    if (!a || !deleteAccount(db, caller.workspaceId, a.id)) {
      throw new OutpostError('NOT_FOUND', `account ${req.params.id} not found`);
    }
    audit(caller.workspaceId, caller.keyId, 'account.delete', a, { name: a.name });
    if (a.terminalId) ctx.gateway.removeAccount(a.terminalId, a.id);
    return reply.status(204).send();
  });
}
