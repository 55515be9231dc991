/**
 * What an operator in the cloud needs to trust and debug a terminal without logging in to the
 * customer's server: connection tests with a verdict per hop, and the terminal's recent log
 * lines (already redacted on the terminal).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';

import { OutpostError } from '../../shared/errors.js';
import { hop } from '../../shared/executor/connection-test.js';
import { newId } from '../../shared/ids.js';
import { redactValue } from '../../shared/logger.js';
import type { AgentMessage, TestHop } from '../../shared/protocol/messages.js';
import { getAccount } from '../store/accounts.js';
import { getTerminal, getTerminalById } from '../store/terminals.js';
import type { ApiContext } from './api-context.js';
import { parseInput } from './http-errors.js';

const TEST_TIMEOUT_MS = 30_000;
const LOGS_TIMEOUT_MS = 10_000;
const MAX_LOG_LINES = 500;
const MAX_LOG_BYTES = 1024 * 1024;
const MAX_LINE_CHARS = 4096;

const logsQuery = z
  .object({
    since: z.iso.datetime({ offset: true }).optional(),
    level: z.enum(['error', 'warn', 'info', 'debug']).optional(),
    limit: z.coerce.number().int().min(1).max(MAX_LOG_LINES).optional(),
  })
  .strict();

/** Registers the test and logs routes. */
export function diagnosticRoutes(app: FastifyInstance, ctx: ApiContext): void {
  /** The control plane to terminal hop: a round trip over the agent channel. */
  async function terminalHop(
    terminalId: string,
    accountId: string | null,
  ): Promise<{ hops: TestHop[] }> {
    if (getTerminalById(ctx.db, terminalId)?.state === 'revoked') {
      return {
        hops: [
          hop(
            'terminal',
            false,
            null,
            `terminal ${terminalId} was revoked: it never connects again`,
            'bind the account to another terminal (PATCH /v1/accounts/:id with terminalId), ' +
              'or create and enroll a new terminal',
          ),
        ],
      };
    }
    const session = ctx.gateway.session(terminalId);
    if (!session) {
      return {
        hops: [
          hop(
            'terminal',
            false,
            null,
            `terminal ${terminalId} is not connected`,
            'start the agent at the site (terminal-agent run, or its service) and check `terminal-agent doctor` there',
          ),
        ],
      };
    }
    const started = performance.now();
    let reply: Extract<AgentMessage, { type: 'test.reply' }>;
    try {
      reply = (await session.request(
        { type: 'test.request', requestId: newId('req'), accountId },
        TEST_TIMEOUT_MS,
      )) as typeof reply;
    } catch {
      const ms = Math.round(performance.now() - started);
      const detail = `terminal ${terminalId} did not answer within ${TEST_TIMEOUT_MS / 1000} s`;
      return {
        hops: [
          hop(
            'terminal',
            false,
            ms,
            detail,
            'check the terminal host: load, network, `terminal-agent doctor`',
          ),
        ],
      };
    }
    const ms = Math.round(performance.now() - started);
    const own = hop(
      'terminal',
      true,
      ms,
      `terminal ${terminalId} answered over its connection`,
      null,
    );
    return { hops: [own, ...reply.hops] };
  }

  app.post<{ Params: { id: string } }>('/v1/terminals/:id/test', async (req) => {
    const caller = ctx.caller(req);
    const t = getTerminal(ctx.db, caller.workspaceId, req.params.id);
    if (!t) throw new OutpostError('NOT_FOUND', `terminal ${req.params.id} not found`);
    const { hops } = await terminalHop(t.id, null);
    return { ok: hops.every((h) => h.ok), hops };
  });

  app.post<{ Params: { id: string } }>('/v1/accounts/:id/test', async (req) => {
    const caller = ctx.caller(req);
    const a = getAccount(ctx.db, caller.workspaceId, req.params.id);
    if (!a) throw new OutpostError('NOT_FOUND', `account ${req.params.id} not found`);
    const hops = a.terminalId
      ? (await terminalHop(a.terminalId, a.id)).hops
      : await ctx.testDirect(ctx.accounts.resolveDirect(a));
    return { ok: hops.length > 0 && hops.every((h) => h.ok), hops };
  });

  app.get<{ Params: { id: string } }>('/v1/terminals/:id/logs', async (req) => {
    const caller = ctx.caller(req);
    const query = parseInput(logsQuery, req.query, 'query');
    const t = getTerminal(ctx.db, caller.workspaceId, req.params.id);
    if (!t) throw new OutpostError('NOT_FOUND', `terminal ${req.params.id} not found`);
    const session = ctx.gateway.session(t.id);
    if (!session) {
      throw new OutpostError(
        'TERMINAL_OFFLINE',
        `terminal ${t.id} is not connected, so its logs cannot be read now`,
      );
    }
    const reply = (await session.request(
      {
        type: 'logs.request',
        requestId: newId('req'),
        since: query.since ?? null,
        level: query.level ?? null,
        limit: query.limit ?? MAX_LOG_LINES,
      },
      LOGS_TIMEOUT_MS,
    )) as Extract<AgentMessage, { type: 'logs.reply' }>;
    // The terminal redacts already; the control plane bounds size and redacts again anyway.
    const lines: unknown[] = [];
    let bytes = 0;
    for (const line of reply.lines.slice(-MAX_LOG_LINES).reverse()) {
      const clean = redactValue(line) as Record<string, unknown>;
      if (typeof clean.message === 'string' && clean.message.length > MAX_LINE_CHARS) {
        clean.message = `${clean.message.slice(0, MAX_LINE_CHARS)}...`;
      }
      bytes += JSON.stringify(clean).length;
      if (bytes > MAX_LOG_BYTES) break;
      lines.push(clean);
    }
    return { lines: lines.reverse() };
  });
}
