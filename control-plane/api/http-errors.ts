/** Turns every error into `{"error": {code, message}}` with the right status. */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ZodError, type z } from 'zod';

import { OutpostError, toOutpostError } from '../../shared/errors.js';
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

/** Answers an error in the API's shape, with Retry-After when the error carries a delay. */
function sendError(reply: FastifyReply, e: OutpostError): void {
  if (e.details.retryAfterSeconds !== undefined)
    void reply.header('retry-after', String(e.details.retryAfterSeconds));
  void reply.status(e.httpStatus).send({ error: e.toJSON() });
}

/**
 * Fastify's `frameworkErrors`: what its router refuses before any route runs, answered in the
 * API's own shape rather than Fastify's. An id too long for the router names nothing that
 * exists, which only a caller with a valid key is told.
 */
export function frameworkErrorHandler(authenticate: (req: FastifyRequest) => unknown) {
  return (err: FastifyError, req: FastifyRequest, reply: FastifyReply): void => {
    let e: OutpostError;
    try {
      if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
        authenticate(req);
        e = new OutpostError('NOT_FOUND', 'nothing has this id: it is longer than any id');
      } else if (err.code === 'FST_ERR_BAD_URL') {
        e = new OutpostError('VALIDATION_FAILED', 'the URL is not valid: check its % escapes', {
          field: 'url',
        });
      } else {
        e = new OutpostError('INTERNAL', 'internal error; see the control plane log');
      }
    } catch (authError) {
      e = toOutpostError(authError);
    }
    sendError(reply, e);
  };
}

/** JSON bodies as Fastify parses them, except that an empty body counts as no body. */
export function acceptEmptyJsonBodies(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  // DELETE, /cancel and /test take no body, and clients often send the JSON content type anyway.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = body.toString();
    if (text === '') done(null, undefined);
    else void parse(req, text, done);
  });
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
    sendError(reply, e);
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
