/** Turns every error into `{"error": {code, message}}` with the right status. */
import type { FastifyError, FastifyInstance } from 'fastify';
import { ZodError, type z } from 'zod';

import { OutpostError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';

/** Parses input with a schema; a failure is VALIDATION_FAILED naming the field and the problem. */
export function parseInput<T extends z.ZodType>(
  schema: T,
  value: unknown,
  where = 'body',
): z.infer<T> {
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  throw zodToError(parsed.error, where);
}

function zodToError(error: ZodError, where: string): OutpostError {
  const issue = error.issues[0]!;
  const field = issue.path.map(String).join('.');
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') message = `unknown field(s): ${issue.keys.join(', ')}`;
  if (issue.code === 'invalid_value' && 'values' in issue) {
    message = `must be one of: ${(issue.values as unknown[]).map(String).join(', ')}`;
  }
  const name = field === '' ? where : field;
  return new OutpostError('VALIDATION_FAILED', `${name}: ${message}`, { field: name });
}

/** Installs the error and not-found handlers. */
export function installErrorHandling(app: FastifyInstance, logger: Logger): void {
  app.setErrorHandler((err: FastifyError | OutpostError | Error, req, reply) => {
    let e: OutpostError;
    if (err instanceof OutpostError) e = err;
    else if (err instanceof ZodError) e = zodToError(err, 'body');
    else if ((err as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      e = new OutpostError('BODY_TOO_LARGE', 'the request body is too large for this endpoint');
    } else if (
      (err as FastifyError).statusCode === 400 ||
      (err as FastifyError).code?.startsWith('FST_ERR_CTP')
    ) {
      e = new OutpostError('INVALID_JSON', `the request body is not valid JSON: ${err.message}`);
    } else if ((err as FastifyError).statusCode === 415) {
      e = new OutpostError('VALIDATION_FAILED', 'send JSON with Content-Type: application/json');
    } else {
      logger.error('unhandled error in an API request', {
        method: req.method,
        path: req.routeOptions.url,
        err,
      });
      e = new OutpostError('INTERNAL', 'internal error; see the control plane log');
    }
    if (e.details.retryAfterSeconds !== undefined)
      void reply.header('retry-after', String(e.details.retryAfterSeconds));
    void reply.status(e.httpStatus).send({ error: e.toJSON() });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({
      error: {
        code: 'ROUTE_NOT_FOUND',
        message: `no route ${req.method} ${req.url.split('?')[0]}`,
      },
    });
  });
}
