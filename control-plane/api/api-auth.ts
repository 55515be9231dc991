/**
 * API key authentication. Keys are looked up by their SHA-256 and the stored hash is compared
 * again in constant time; repeated failures from one address are refused for a while.
 */
import type { FastifyRequest } from 'fastify';

import { OutpostError } from '../../shared/errors.js';
import { constantTimeEqual, hashToken } from '../../shared/ids.js';
import type { Db } from '../store/database.js';

/** Who is calling: a workspace and the key used. */
export interface Caller {
  workspaceId: string;
  keyId: string;
}

const WINDOW_MS = 60_000;
const MAX_FAILURES = 30;

/** Checks API keys and counts failures per client address. */
export class ApiKeyAuth {
  private readonly failures = new Map<string, number[]>();

  constructor(private readonly db: Db) {}

  /**
   * The caller of a request, or a 401/429 error. A valid key always passes, even from an address
   * locked out for failures: keys are 256-bit random, so counting failures cannot help guess
   * one, and one client behind a shared NAT must not lock out everyone else there.
   */
  authenticate(req: FastifyRequest): Caller {
    const header = req.headers.authorization ?? '';
    const key = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
    if (key) {
      const hash = hashToken(key);
      const row = this.db
        .prepare('SELECT id, workspace_id, key_hash FROM api_keys WHERE key_hash = ?')
        .get(hash) as { id: string; workspace_id: string; key_hash: string } | undefined;
      if (row && constantTimeEqual(row.key_hash, hash)) {
        return { workspaceId: row.workspace_id, keyId: row.id };
      }
    }
    const ip = req.ip;
    const now = Date.now();
    const recent = (this.failures.get(ip) ?? []).filter((t) => t > now - WINDOW_MS);
    if (recent.length >= MAX_FAILURES) {
      const retry = Math.max(1, Math.ceil((recent[0]! + WINDOW_MS - now) / 1000));
      throw new OutpostError(
        'TOO_MANY_FAILED_ATTEMPTS',
        'too many requests with a wrong API key; wait and retry',
        { retryAfterSeconds: retry },
      );
    }
    recent.push(now);
    this.failures.set(ip, recent);
    if (this.failures.size > 10_000) this.failures.clear();
    throw new OutpostError(
      'UNAUTHENTICATED',
      key ? 'the API key is not valid' : 'missing Authorization: Bearer <API key>',
    );
  }
}
