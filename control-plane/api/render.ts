/** How stored objects appear in API answers: never a secret, absent values as null. */
import { isTextContentType } from '../../shared/executor/headers.js';
import { MIN_PROTOCOL_VERSION } from '../../shared/version.js';
import type { AccountRecord } from '../store/accounts.js';
import type { JobRecord } from '../store/jobs.js';
import type { TerminalRecord } from '../store/terminals.js';

/** Live facts about a terminal that the store does not hold. */
export interface Presence {
  online: boolean;
  connectedSince: string | null;
}

/** A terminal's status as the API names it. */
export function terminalStatus(
  t: TerminalRecord,
  presence: Presence,
): 'pending' | 'online' | 'offline' | 'revoked' {
  if (t.state === 'revoked') return 'revoked';
  if (t.state === 'pending') return 'pending';
  return presence.online ? 'online' : 'offline';
}

/** A terminal in a list. */
export function renderTerminalSummary(t: TerminalRecord, presence: Presence) {
  return {
    id: t.id,
    name: t.name,
    status: terminalStatus(t, presence),
    lastSeenAt: t.lastSeenAt,
    version: t.version,
  };
}

/** One terminal, with its details. */
export function renderTerminal(t: TerminalRecord, presence: Presence) {
  const uptimeSeconds =
    presence.online && t.agentStartedAt
      ? Math.max(0, Math.round((Date.now() - Date.parse(t.agentStartedAt)) / 1000))
      : null;
  return {
    ...renderTerminalSummary(t, presence),
    createdAt: t.createdAt,
    enrolledAt: t.enrolledAt,
    revokedAt: t.revokedAt,
    enrollmentExpiresAt: t.state === 'pending' ? t.enrollmentExpiresAt : null,
    maxConcurrency: t.maxConcurrency,
    connectedSince: presence.connectedSince,
    lastHeartbeatAt: t.lastHeartbeatAt,
    hostname: t.hostname,
    os: t.os,
    agentStartedAt: t.agentStartedAt,
    uptimeSeconds,
    protocolVersion: t.protocolVersion,
    versionSupported: t.protocolVersion === null ? null : t.protocolVersion >= MIN_PROTOCOL_VERSION,
    encryptionKey: t.state !== 'pending' ? t.encryptionJwk : null,
  };
}

/** An account: settings and the names of the secrets that are set, never their values. */
export function renderAccount(a: AccountRecord, online: boolean) {
  return {
    id: a.id,
    name: a.name,
    authType: a.authType,
    host: a.host,
    port: a.port,
    terminalId: a.terminalId,
    settings: a.settings,
    status: online ? 'online' : 'offline',
    secretFields: a.secretFields,
    secretsSealed: a.terminalId !== null,
    warnings: a.warnings,
    revision: a.revision,
    createdAt: a.createdAt,
    updatedAt: a.updatedAt,
  };
}

/** A job with its state, its answer's head and its error. */
export function renderJob(j: JobRecord) {
  return {
    id: j.id,
    accountId: j.accountId,
    terminalId: j.terminalId,
    state: j.state,
    createdAt: j.createdAt,
    deadlineAt: j.deadlineAt,
    dispatchedAt: j.dispatchedAt,
    startedAt: j.startedAt,
    finishedAt: j.finishedAt,
    response:
      j.responseStatus === null
        ? null
        : { status: j.responseStatus, headers: j.responseHeaders ?? {} },
    bodyBytes: j.bodyBytes,
    error: j.error,
  };
}

/** Largest body returned inline by `?wait=true`; larger ones are read from `/body`. */
export const MAX_WAIT_BODY_BYTES = 10 * 1024 * 1024;

/** The `?wait=true` answer: the job with its whole body inline (text or base64). */
export function renderFinishedJob(j: JobRecord, body: Buffer | undefined) {
  let response: Record<string, unknown> | null = null;
  if (j.responseStatus !== null) {
    const headers = j.responseHeaders ?? {};
    const ct = headers['content-type'];
    response = { status: j.responseStatus, headers };
    if (body === undefined) {
      response.body = null;
      response.bodyTooLarge = true;
      response.bodyUrl = `/v1/jobs/${j.id}/body`;
    } else if (isTextContentType(Array.isArray(ct) ? ct[0] : ct)) {
      response.body = body.toString('utf8');
    } else {
      response.bodyBase64 = body.toString('base64');
    }
  }
  return { ...renderJob(j), response };
}
