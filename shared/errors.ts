/**
 * Errors with stable codes. The same codes travel over the agent protocol, out of the HTTP API
 * and out of both CLIs; messages are for people and may change, codes may not.
 */

/** Every stable error code, with the HTTP status the API answers it with. */
export const ERROR_STATUS = {
  // Malformed input (400).
  VALIDATION_FAILED: 400,
  INVALID_JSON: 400,
  INVALID_TARGET: 400,
  INVALID_HEADER: 400,
  INVALID_SECRET: 400,
  INVALID_SETTING: 400,
  BODY_TOO_LARGE: 413,
  // Identity (401/403).
  UNAUTHENTICATED: 401,
  ENROLLMENT_TOKEN_INVALID: 401,
  TERMINAL_TOKEN_INVALID: 401,
  TERMINAL_REVOKED: 403,
  // Lookup and state (404/409).
  NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  CONFLICT: 409,
  SECRETS_REQUIRED: 409,
  TERMINAL_OFFLINE: 409,
  JOB_NOT_FINISHED: 409,
  JOB_HAS_NO_RESPONSE: 409,
  BODY_EXPIRED: 410,
  JOB_FINAL: 409,
  ALREADY_ENROLLED: 409,
  NOT_ENROLLED: 409,
  // Limits (429).
  RATE_LIMITED: 429,
  QUEUE_FULL: 429,
  TOO_MANY_FAILED_ATTEMPTS: 429,
  // Job outcomes (reported inside a job, not as HTTP statuses of the API itself).
  TARGET_UNREACHABLE: 502,
  TARGET_FORBIDDEN: 403,
  DNS_FAILED: 502,
  CONNECTION_REFUSED: 502,
  TLS_FAILED: 502,
  AUTH_FLOW_FAILED: 502,
  BODY_INCOMPLETE: 502,
  REDIRECT_REFUSED: 502,
  REQUEST_FAILED: 502,
  TIMEOUT_CONNECT: 504,
  TIMEOUT_FIRST_BYTE: 504,
  TIMEOUT_IDLE_BODY: 504,
  TIMEOUT_JOB: 504,
  TIMEOUT_QUEUED: 504,
  CANCELLED: 409,
  AGENT_LOST_JOB: 502,
  AGENT_SHUTDOWN: 503,
  // Protocol and internals.
  PROTOCOL_ERROR: 400,
  PROTOCOL_VERSION_UNSUPPORTED: 426,
  INTERNAL: 500,
  UNAVAILABLE: 503,
} as const;

/** A stable error code. */
export type ErrorCode = keyof typeof ERROR_STATUS;

/** True when the string is one of the known codes (for codes that arrive over the wire). */
export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERROR_STATUS, value);
}

/** Extra structured fields an error carries (the field at fault, a retry delay, ...). */
export interface ErrorDetails {
  field?: string;
  retryAfterSeconds?: number;
  [key: string]: unknown;
}

/** The one base error of Outpost: a stable code, a message for people, optional details. */
export class OutpostError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'OutpostError';
    this.code = code;
    this.details = details;
  }

  /** The HTTP status that the API answers this error with. */
  get httpStatus(): number {
    return ERROR_STATUS[this.code];
  }

  /** The `{code, message}` form used by the API and the protocol. */
  toJSON(): { code: ErrorCode; message: string; field?: string } {
    const out: { code: ErrorCode; message: string; field?: string } = {
      code: this.code,
      message: this.message,
    };
    if (this.details.field !== undefined) out.field = this.details.field;
    return out;
  }
}

/** A plain `{code, message}` error as stored in a job and sent over the wire. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  field?: string;
}

/** Wraps anything thrown into an OutpostError, keeping the cause; unknown errors become INTERNAL. */
export function toOutpostError(err: unknown, fallback: ErrorCode = 'INTERNAL'): OutpostError {
  if (err instanceof OutpostError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new OutpostError(fallback, message, {}, err);
}
