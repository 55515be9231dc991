/**
 * What a new job must pass before it is stored: its account exists in the caller's workspace and
 * is not bound to a revoked terminal, and its request can make a target URL, headers and body.
 * A job that can never run is refused now with a 400, rather than failed later.
 */
import { z } from 'zod';

import { OutpostError } from '../../shared/errors.js';
import { checkJobHeaders } from '../../shared/executor/headers.js';
import { inlineBody } from '../../shared/executor/request-body.js';
import { buildTargetUrl, parseAccountBase } from '../../shared/executor/target-url.js';
import { jobRequestSchema } from '../../shared/jobs.js';
import { getAccount, type AccountRecord } from '../store/accounts.js';
import type { Db } from '../store/database.js';
import { getTerminalById } from '../store/terminals.js';

/** The body of `POST /v1/jobs`. */
export const createJobSchema = z
  .object({
    accountId: z.string().min(1),
    request: jobRequestSchema,
    timeoutMs: z
      .number()
      .int()
      .min(100)
      .max(24 * 3600_000)
      .optional(),
    requestBodyUpload: z.boolean().optional(),
  })
  .strict();

/** A validated `POST /v1/jobs` body. */
export type NewJobInput = z.infer<typeof createJobSchema>;

/** Checks a new job; returns its account. Throws a coded 4xx error for what cannot run. */
export function checkNewJob(db: Db, workspaceId: string, input: NewJobInput): AccountRecord {
  const account = getAccount(db, workspaceId, input.accountId);
  if (!account)
    throw new OutpostError('NOT_FOUND', `account ${input.accountId} not found`, {
      field: 'accountId',
    });
  // A revoked terminal never takes a job again: say so now rather than time out later.
  if (account.terminalId && getTerminalById(db, account.terminalId)?.state === 'revoked') {
    throw new OutpostError(
      'CONFLICT',
      `terminal ${account.terminalId} was revoked: bind account ${account.id} to another` +
        ' terminal (PATCH /v1/accounts/:id with terminalId)',
      { field: 'accountId' },
    );
  }
  // Refuse what can never run now, with a 400, rather than as a failed job later.
  buildTargetUrl(
    parseAccountBase(account.host, account.port),
    input.request.path,
    input.request.query,
  );
  const headers = checkJobHeaders(input.request.headers);
  if (
    input.requestBodyUpload &&
    (input.request.body !== undefined || input.request.bodyBase64 !== undefined)
  ) {
    throw new OutpostError(
      'VALIDATION_FAILED',
      'requestBodyUpload jobs take their body from the upload, not inline',
      {
        field: 'requestBodyUpload',
      },
    );
  }
  inlineBody(input.request, headers);
  return account;
}
