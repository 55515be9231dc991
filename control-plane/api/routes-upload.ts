/**
 * `PUT /v1/jobs/:id/request-body`: the raw body of a job created with `requestBodyUpload: true`,
 * streamed through to where the job runs. The answer (204) comes once the whole body was handed
 * on; the job itself ends as usual and is read with `GET /v1/jobs/:id`.
 */
import type { FastifyInstance } from 'fastify';

import { OutpostError } from '../../shared/errors.js';
import { isFinalState } from '../../shared/jobs.js';
import { getJob } from '../store/jobs.js';
import type { ApiContext } from './api-context.js';

/** Registers the upload route in its own scope, where any content type passes as a raw stream. */
export function uploadRoutes(app: FastifyInstance, ctx: ApiContext): void {
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    // The body is not parsed or buffered: the handler streams it on as it arrives.
    scope.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

    scope.put<{ Params: { id: string } }>('/v1/jobs/:id/request-body', async (req, reply) => {
      const caller = ctx.caller(req);
      const job = getJob(ctx.db, caller.workspaceId, req.params.id);
      if (!job) throw new OutpostError('NOT_FOUND', `job ${req.params.id} not found`);
      if (!job.requestBodyUpload) {
        throw new OutpostError(
          'CONFLICT',
          'this job takes its body inline: it was not created with requestBodyUpload: true',
        );
      }
      if (isFinalState(job.state)) {
        throw new OutpostError('JOB_FINAL', `job ${job.id} already ended (${job.state})`);
      }
      const uploads = ctx.jobs.requestUploads!;
      if (uploads.has(job.id) || ctx.jobs.uploading(job.id)) {
        throw new OutpostError(
          'CONFLICT',
          `the request body of job ${job.id} is already being uploaded`,
        );
      }
      const done = uploads.register(job.id, req.raw);
      ctx.jobs.beginUpload(job);
      try {
        await done;
      } catch (err) {
        // A body that did not arrive whole must not leave a request half-sent at the target.
        const e =
          err instanceof OutpostError ? err : new OutpostError('REQUEST_FAILED', String(err));
        ctx.jobs.fail(job.id, { code: e.code, message: e.message });
        throw e;
      }
      return reply.status(204).send();
    });
  });
}
