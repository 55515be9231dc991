/**
 * `POST /v1/enroll`: the one endpoint without an API key. An agent spends its one-time
 * enrollment token and registers the public halves of its signing and encryption keys.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';

import { displayNameSchema } from '../../shared/display-text.js';
import { OutpostError } from '../../shared/errors.js';
import { recordAudit } from '../store/audit.js';
import { spendEnrollmentToken } from '../store/terminals.js';
import type { ApiContext } from './api-context.js';
import { parseInput } from './http-errors.js';

const publicEcKey = z
  .object({
    kty: z.literal('EC'),
    crv: z.literal('P-256'),
    x: z.string().min(40).max(60),
    y: z.string().min(40).max(60),
  })
  .passthrough()
  .refine((k) => !('d' in k), { message: 'must be a public key (no "d")' });

const enrollSchema = z
  .object({
    token: z.string().min(10).max(200),
    name: displayNameSchema().optional(),
    signingKey: publicEcKey,
    encryptionKey: publicEcKey,
    agentVersion: z.string().max(50).optional(),
    hostname: z.string().max(255).optional(),
  })
  .strict();

const FAILURE_WINDOW_MS = 60_000;
const MAX_FAILURES = 20;

/** Registers the enrollment route. */
export function enrollRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const failures = new Map<string, number[]>();

  app.post('/v1/enroll', async (req, reply) => {
    const now = Date.now();
    const recent = (failures.get(req.ip) ?? []).filter((t) => t > now - FAILURE_WINDOW_MS);
    if (recent.length >= MAX_FAILURES) {
      throw new OutpostError(
        'TOO_MANY_FAILED_ATTEMPTS',
        'too many failed enrollments; wait a minute',
        {
          retryAfterSeconds: 60,
        },
      );
    }
    const body = parseInput(enrollSchema, req.body);
    const pick = (k: z.infer<typeof publicEcKey>) => ({ kty: k.kty, crv: k.crv, x: k.x, y: k.y });
    const result = spendEnrollmentToken(ctx.db, body.token, {
      signingJwk: { ...pick(body.signingKey), alg: 'ES256', use: 'sig' },
      encryptionJwk: { ...pick(body.encryptionKey), alg: 'ECDH-ES+A256KW', use: 'enc' },
    });
    if (result === undefined || result === 'expired') {
      recent.push(now);
      failures.set(req.ip, recent);
      throw new OutpostError(
        'ENROLLMENT_TOKEN_INVALID',
        result === 'expired'
          ? 'the enrollment token expired: create the terminal again (POST /v1/terminals) for a new token'
          : 'the enrollment token is unknown or was already used: each token works once',
      );
    }
    if (body.name && body.name !== result.name) {
      ctx.db.prepare('UPDATE terminals SET name = ? WHERE id = ?').run(body.name, result.id);
    }
    recordAudit(ctx.db, result.workspaceId, {
      actor: `terminal:${result.id}`,
      action: 'terminal.enroll',
      targetType: 'terminal',
      targetId: result.id,
      details: { hostname: body.hostname ?? null, agentVersion: body.agentVersion ?? null },
    });
    ctx.logger.info('terminal enrolled', { terminalId: result.id });
    return reply.status(201).send({ terminalId: result.id, name: body.name ?? result.name });
  });
}
