/**
 * Idempotency keys of `POST /v1/jobs`: a key names one request. Sent again with the same
 * request it returns the job created the first time; with a different request it is refused,
 * since silently returning a job for another request would hide the caller's mistake.
 */
import { isDeepStrictEqual } from 'node:util';

import { OutpostError } from '../../shared/errors.js';
import { DEFAULT_JOB_TIMEOUT_MS, type JobRequest } from '../../shared/jobs.js';
import type { JobRecord } from '../store/jobs.js';

/**
 * The store keeps a deadline, not the timeout: the timeout read back from it may be short by the
 * few milliseconds between computing the deadline and inserting the row. Timeouts closer than
 * this are taken as the same.
 */
const TIMEOUT_SLACK_MS = 1000;

/** What of a job creation must match for a repeated Idempotency-Key. */
export interface JobIdentity {
  accountId: string;
  request: JobRequest;
  timeoutMs?: number | undefined;
  requestBodyUpload?: boolean | undefined;
}

/** Throws CONFLICT unless `input` asks for the same job as the one stored under the key. */
export function assertSameJobForKey(existing: JobRecord, input: JobIdentity): void {
  const storedTimeout = Date.parse(existing.deadlineAt) - Date.parse(existing.createdAt);
  const timeout = input.timeoutMs ?? DEFAULT_JOB_TIMEOUT_MS;
  // Through JSON, as the request was stored: undefined fields drop out, key order does not count.
  const request: unknown = JSON.parse(JSON.stringify(input.request));
  const same =
    existing.accountId === input.accountId &&
    existing.requestBodyUpload === (input.requestBodyUpload ?? false) &&
    Math.abs(storedTimeout - timeout) < TIMEOUT_SLACK_MS &&
    isDeepStrictEqual(existing.request, request);
  if (!same) {
    throw new OutpostError(
      'CONFLICT',
      `the Idempotency-Key was used with a different request (job ${existing.id}):` +
        ' use a new key for a new request',
      { field: 'Idempotency-Key' },
    );
  }
}
