/** Maps how an execution ended to a job's final state. */
import { toOutpostError } from '../errors.js';
import type { JobOutcome } from '../jobs.js';

/** The final state and error of a job whose execution threw. */
export function outcomeOfError(err: unknown, bodyBytes: number): JobOutcome {
  const e = toOutpostError(err, 'REQUEST_FAILED');
  const state = e.code.startsWith('TIMEOUT_')
    ? 'timed_out'
    : e.code === 'CANCELLED'
      ? 'cancelled'
      : 'failed';
  return { state, error: { code: e.code, message: e.message }, bodyBytes };
}
