/** Jobs: their request, states and results, as both sides see them. */
import { z } from 'zod';

import type { ErrorBody } from './errors.js';
import type { ResponseHeaders } from './executor/headers.js';

/** Inline request bodies are capped; larger ones use `requestBodyUpload`. */
export const MAX_INLINE_BODY_BYTES = 10 * 1024 * 1024;

/** Default whole-job deadline, counted from creation. */
export const DEFAULT_JOB_TIMEOUT_MS = 30_000;

/** Methods a job may not use. */
const REFUSED_METHODS = ['CONNECT', 'TRACE', 'TRACK'];

const queryScalar = z.union([z.string(), z.number(), z.boolean()]);

/** The request template of a job. */
export const jobRequestSchema = z
  .object({
    method: z
      .string()
      .regex(/^[A-Za-z]{1,16}$/, 'method must be an HTTP method such as GET or POST')
      .transform((m) => m.toUpperCase())
      // CONNECT opens a tunnel rather than a request; TRACE and TRACK echo the request back,
      // the account's credentials included (cross-site tracing).
      .refine((m) => !REFUSED_METHODS.includes(m), {
        message: `method may not be ${REFUSED_METHODS.join(', ')}`,
      }),
    path: z.string().max(8192).default('/'),
    query: z.record(z.string(), z.union([queryScalar, z.array(queryScalar)])).optional(),
    headers: z.record(z.string(), z.string()).optional(),
    body: z.unknown().optional(),
    bodyBase64: z.string().optional(),
  })
  .strict()
  .refine((r) => r.body === undefined || r.bodyBase64 === undefined, {
    message: 'give at most one of body and bodyBase64',
    path: ['bodyBase64'],
  });

/** A job's request as validated. */
export type JobRequest = z.infer<typeof jobRequestSchema>;

/** Job states; the last four are final. */
export const JOB_STATES = [
  'queued',
  'dispatched',
  'running',
  'succeeded',
  'failed',
  'cancelled',
  'timed_out',
] as const;

/** One job state. */
export type JobState = (typeof JOB_STATES)[number];

/** True for states a job never leaves. */
export function isFinalState(state: JobState): boolean {
  return (
    state === 'succeeded' || state === 'failed' || state === 'cancelled' || state === 'timed_out'
  );
}

/** The head of a target's answer. */
export interface ResponseHead {
  status: number;
  headers: ResponseHeaders;
}

/** How a job ended, as reported by whoever ran it. */
export interface JobOutcome {
  state: 'succeeded' | 'failed' | 'cancelled' | 'timed_out';
  error: ErrorBody | null;
  bodyBytes: number;
}
