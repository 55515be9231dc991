/** Turns a job's `body` or `bodyBase64` into bytes and a default content type. */
import { OutpostError } from '../errors.js';
import { MAX_INLINE_BODY_BYTES, type JobRequest } from '../jobs.js';

/** The body the executor sends: bytes in memory, a stream, or nothing. */
export type RequestBody =
  { kind: 'buffer'; data: Buffer } | { kind: 'stream'; stream: AsyncIterable<Buffer> } | undefined;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Encodes the inline body of a job; sets `content-type` for JSON bodies unless the job did. */
export function inlineBody(request: JobRequest, headers: Record<string, string>): RequestBody {
  let data: Buffer | undefined;
  if (request.bodyBase64 !== undefined) {
    const clean = request.bodyBase64.replace(/\s+/g, '');
    if (clean.length % 4 === 1 || !BASE64.test(clean)) {
      throw new OutpostError('VALIDATION_FAILED', 'request.bodyBase64 is not valid base64', {
        field: 'request.bodyBase64',
      });
    }
    data = Buffer.from(clean, 'base64');
  } else if (typeof request.body === 'string') {
    data = Buffer.from(request.body, 'utf8');
  } else if (request.body !== undefined && request.body !== null) {
    data = Buffer.from(JSON.stringify(request.body), 'utf8');
    headers['content-type'] ??= 'application/json';
  }
  if (data === undefined) return undefined;
  if (data.length > MAX_INLINE_BODY_BYTES) {
    throw new OutpostError(
      'BODY_TOO_LARGE',
      `the inline body is ${data.length} bytes; the limit is ${MAX_INLINE_BODY_BYTES}: create the job with ` +
        'requestBodyUpload: true and PUT the body to /v1/jobs/:id/request-body',
      { field: 'request.body' },
    );
  }
  return { kind: 'buffer', data };
}
