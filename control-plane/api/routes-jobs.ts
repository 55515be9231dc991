/** `/v1/jobs`: create (optionally waiting), read, stream the body, cancel, upload a body. */
import { Readable } from 'node:stream';

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { OutpostError } from '../../shared/errors.js';
import { isFinalState } from '../../shared/jobs.js';
import { createJobSchema } from '../jobs/job-intake.js';
import { getJob, listJobs } from '../store/jobs.js';
import type { ApiContext } from './api-context.js';
import { parseInput } from './http-errors.js';
import { MAX_WAIT_BODY_BYTES, renderFinishedJob, renderJob } from './render.js';

/** An AbortSignal that fires when the API caller goes away. */
function callerGone(req: FastifyRequest, reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  // The request's own 'close' fires once its body was read; the socket's says the caller left.
  req.raw.socket.once('close', () => controller.abort());
  reply.raw.once('close', () => controller.abort());
  return controller.signal;
}

/** Registers the job routes. */
export function jobRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { db, jobs } = ctx;

  app.post<{ Querystring: { wait?: string } }>('/v1/jobs', async (req, reply) => {
    const caller = ctx.caller(req);
    const body = parseInput(createJobSchema, req.body);
    const key = req.headers['idempotency-key'];
    const { job } = jobs.create(
      caller.workspaceId,
      body,
      Array.isArray(key) ? key[0] : key,
      caller.keyId,
    );
    const wait = req.query.wait;
    if (wait !== 'true' && wait !== '1') {
      return reply.status(202).send(renderJob(job));
    }
    const done = await jobs.waitFinal(job.id, callerGone(req, reply));
    if (!isFinalState(done.state)) return reply.status(202).send(renderJob(done));
    // A small body was stored with the job; a larger one is in its file.
    let bodyBytes = jobs.inlineBody(done.id);
    if (bodyBytes === undefined && jobs.spool.size(done.id) <= MAX_WAIT_BODY_BYTES) {
      bodyBytes = await jobs.spool.readAll(done.id);
    }
    return reply.status(200).send(renderFinishedJob(done, bodyBytes));
  });

  app.get('/v1/jobs', async (req) => {
    const caller = ctx.caller(req);
    const { cursor, limit } = ctx.page(req);
    const rows = listJobs(db, caller.workspaceId, cursor, limit + 1);
    return {
      items: rows.slice(0, limit).map(renderJob),
      nextCursor: rows.length > limit ? rows[limit - 1]!.id : null,
    };
  });

  app.get<{ Params: { id: string } }>('/v1/jobs/:id', async (req) => {
    const caller = ctx.caller(req);
    const job = getJob(db, caller.workspaceId, req.params.id);
    if (!job) throw new OutpostError('NOT_FOUND', `job ${req.params.id} not found`);
    return renderJob(job);
  });

  app.get<{ Params: { id: string } }>('/v1/jobs/:id/body', async (req, reply) => {
    const caller = ctx.caller(req);
    const found = getJob(db, caller.workspaceId, req.params.id);
    if (!found) throw new OutpostError('NOT_FOUND', `job ${req.params.id} not found`);
    const gone = callerGone(req, reply);
    const job = await jobs.waitHead(found.id, gone);
    if (job.responseStatus === null) {
      if (gone.aborted) return reply;
      throw new OutpostError(
        'JOB_HAS_NO_RESPONSE',
        `job ${job.id} ended (${job.state}) without an answer from the target${job.error ? `: ${job.error.code}` : ''}`,
      );
    }
    const ct = job.responseHeaders?.['content-type'];
    void reply.header(
      'content-type',
      (Array.isArray(ct) ? ct[0] : ct) ?? 'application/octet-stream',
    );
    void reply.header('x-outpost-target-status', String(job.responseStatus));
    const stored = isFinalState(job.state) ? jobs.inlineBody(job.id) : undefined;
    if (
      job.state === 'succeeded' &&
      job.bodyBytes > 0 &&
      !stored &&
      jobs.spool.size(job.id) === 0
    ) {
      // Deleted by the retention period: say so rather than answer an empty body.
      throw new OutpostError(
        'BODY_EXPIRED',
        `the body of job ${job.id} was deleted after the retention period (OUTPOST_BODY_RETENTION_HOURS)`,
      );
    }
    if (job.state === 'succeeded') {
      void reply.header('content-length', String(stored?.length ?? jobs.spool.size(job.id)));
      if (stored) return reply.status(200).send(stored);
    }
    const isComplete = () => {
      const s = jobs.stateOf(job.id);
      return s === undefined || isFinalState(s);
    };
    const body = jobs.spool.read(job.id, isComplete, () => jobs.inlineBody(job.id), gone);
    return reply.status(200).send(toStream(body, () => jobs.stateOf(job.id) === 'succeeded'));
  });

  app.post<{ Params: { id: string } }>('/v1/jobs/:id/cancel', async (req) => {
    const caller = ctx.caller(req);
    const job = getJob(db, caller.workspaceId, req.params.id);
    if (!job) throw new OutpostError('NOT_FOUND', `job ${req.params.id} not found`);
    return renderJob(jobs.cancel(job));
  });
}

/**
 * A readable stream of a body that is cut (destroyed with an error) when the job did not
 * succeed, so that a caller never mistakes a partial body for a whole one.
 */
function toStream(source: AsyncGenerator<Buffer>, succeeded: () => boolean) {
  async function* guarded() {
    yield* source;
    if (!succeeded()) throw new Error('the body was cut off: the job did not succeed');
  }
  return Readable.from(guarded(), { objectMode: false });
}
