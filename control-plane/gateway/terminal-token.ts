/**
 * Terminal connection tokens: a JWT the agent signs with the private half of the key it
 * enrolled. Short-lived, bound to this channel by its audience, and spent once by its `jti`, so
 * that a captured token cannot be replayed.
 */
import { decodeJwt, importJWK, jwtVerify } from 'jose';

import { OutpostError } from '../../shared/errors.js';
import type { Db } from '../store/database.js';
import { getTerminalById, spendTokenId, type TerminalRecord } from '../store/terminals.js';

/** Audience of connection tokens. */
export const CHANNEL_AUDIENCE = 'outpost-agent-channel';
/** Longest lifetime of a connection token accepted. */
export const MAX_TOKEN_AGE_SECONDS = 300;

/** Verifies a connection token; returns the terminal it proves, or throws a coded error. */
export async function verifyTerminalToken(db: Db, token: string): Promise<TerminalRecord> {
  let claims: { sub?: string };
  try {
    claims = decodeJwt(token);
  } catch (err) {
    throw new OutpostError('TERMINAL_TOKEN_INVALID', 'the connection token is not a JWT', {}, err);
  }
  const terminal = typeof claims.sub === 'string' ? getTerminalById(db, claims.sub) : undefined;
  if (!terminal || !terminal.signingJwk) {
    throw new OutpostError(
      'TERMINAL_TOKEN_INVALID',
      'the connection token names no enrolled terminal',
    );
  }
  let payload;
  try {
    const key = await importJWK(terminal.signingJwk, 'ES256');
    ({ payload } = await jwtVerify(token, key, {
      algorithms: ['ES256'],
      audience: CHANNEL_AUDIENCE,
      subject: terminal.id,
      maxTokenAge: MAX_TOKEN_AGE_SECONDS,
      clockTolerance: 30,
      requiredClaims: ['exp', 'iat', 'jti'],
    }));
  } catch (err) {
    throw new OutpostError(
      'TERMINAL_TOKEN_INVALID',
      'the connection token did not verify (signature, audience or time)',
      {},
      err,
    );
  }
  // Only a caller that proved the terminal's key learns that it was revoked.
  if (terminal.state === 'revoked') {
    throw new OutpostError(
      'TERMINAL_REVOKED',
      `terminal ${terminal.id} was revoked: enroll it again with a new token`,
    );
  }
  if ((payload.exp ?? 0) - (payload.iat ?? 0) > MAX_TOKEN_AGE_SECONDS) {
    throw new OutpostError('TERMINAL_TOKEN_INVALID', 'the connection token lives too long');
  }
  if (!spendTokenId(db, `${terminal.id}:${payload.jti}`, (payload.exp ?? 0) + 60)) {
    throw new OutpostError(
      'TERMINAL_TOKEN_INVALID',
      'the connection token was already used (replay refused)',
    );
  }
  return terminal;
}
