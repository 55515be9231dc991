/** The short-lived JWT that proves this terminal on each connection. */
import { randomUUID } from 'node:crypto';

import { importJWK, SignJWT, type JWK } from 'jose';

/** Audience the control plane expects (see control-plane/gateway/terminal-token.ts). */
export const CHANNEL_AUDIENCE = 'outpost-agent-channel';

/** Signs a connection token valid for 60 seconds, with a fresh id so that it works once. */
export async function signConnectionToken(
  terminalId: string,
  signingPrivateJwk: JWK,
): Promise<string> {
  const key = await importJWK(signingPrivateJwk, 'ES256');
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
    .setIssuer(terminalId)
    .setSubject(terminalId)
    .setAudience(CHANNEL_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('60s')
    .setJti(randomUUID())
    .sign(key);
}
