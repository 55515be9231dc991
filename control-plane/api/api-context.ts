/** What the route modules share. */
import type { FastifyRequest } from 'fastify';

import { OutpostError } from '../../shared/errors.js';
import type { ResolvedAccount } from '../../shared/accounts.js';
import type { Logger } from '../../shared/logger.js';
import type { TestHop } from '../../shared/protocol/messages.js';
import type { AccountService } from '../accounts/account-service.js';
import type { AgentGateway } from '../gateway/agent-gateway.js';
import type { JobService } from '../jobs/job-service.js';
import type { Db } from '../store/database.js';
import type { Caller } from './api-auth.js';
import type { Presence } from './render.js';

/** Shared services and helpers of the API routes. */
export interface ApiContext {
  db: Db;
  logger: Logger;
  accounts: AccountService;
  jobs: JobService;
  gateway: AgentGateway;
  enrollmentTtlMs: number;
  caller(req: FastifyRequest): Caller;
  presence(terminalId: string): Presence;
  page(req: FastifyRequest): { cursor: string | null; limit: number };
  /** Runs the connection test of a direct account from the control plane. */
  testDirect(account: ResolvedAccount): Promise<TestHop[]>;
}

/** Reads `?cursor=&limit=` (limit 1..200, default 50). */
export function pageOf(req: FastifyRequest): { cursor: string | null; limit: number } {
  const q = req.query as { cursor?: string; limit?: string };
  const limit = q.limit === undefined ? 50 : Number(q.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 200) {
    throw new OutpostError('VALIDATION_FAILED', 'limit must be an integer from 1 to 200', {
      field: 'limit',
    });
  }
  return { cursor: q.cursor ?? null, limit };
}
