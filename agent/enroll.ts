/**
 * Enrollment: the agent creates its signing and encryption key pairs, spends the one-time token
 * with the public halves, and keeps the private halves encrypted under its local key.
 */
import os from 'node:os';

import { exportJWK, generateKeyPair } from 'jose';
import { request, type Dispatcher } from 'undici';

import { generateEncryptionKeyPair } from '../shared/crypto/sealing.js';
import { OutpostError, isErrorCode } from '../shared/errors.js';
import { PRODUCT_VERSION } from '../shared/version.js';
import type { AgentStore } from './agent-store.js';

/** Options of `enroll`. */
export interface EnrollOptions {
  url: string;
  token: string;
  name?: string;
  force: boolean;
  dispatcher?: Dispatcher;
}

/** Checks a control plane URL: http(s), no credentials, no query. */
export function parseControlPlaneUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new OutpostError(
      'VALIDATION_FAILED',
      `--url "${value}" is not a URL; give e.g. https://outpost.example.com`,
      {
        field: 'url',
      },
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new OutpostError('VALIDATION_FAILED', '--url must be an http:// or https:// URL', {
      field: 'url',
    });
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new OutpostError(
      'VALIDATION_FAILED',
      '--url may not carry credentials, a query or a fragment',
      { field: 'url' },
    );
  }
  return url;
}

/** The environment variable that can carry the enrollment token instead of `--token`. */
export const ENROLLMENT_TOKEN_ENV = 'OUTPOST_ENROLLMENT_TOKEN';

/**
 * The enrollment token: `--token`, else `OUTPOST_ENROLLMENT_TOKEN`. The variable exists so that
 * installers and containers can pass the token without it showing in `ps` or a shell history.
 */
export function enrollmentToken(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const token = flag ?? env[ENROLLMENT_TOKEN_ENV];
  if (token === undefined || token.trim() === '') {
    throw new OutpostError(
      'VALIDATION_FAILED',
      `give the enrollment token with --token or in ${ENROLLMENT_TOKEN_ENV}`,
      { field: 'token' },
    );
  }
  return token.trim();
}

/** Enrolls this data dir; returns the terminal id. */
export async function enroll(
  store: AgentStore,
  options: EnrollOptions,
): Promise<{ terminalId: string; name: string }> {
  const url = parseControlPlaneUrl(options.url);
  if (store.identitySummary() && !options.force) {
    throw new OutpostError(
      'ALREADY_ENROLLED',
      `this data dir (${store.dataDir}) is already enrolled as terminal ${store.identitySummary()!.terminalId}; ` +
        'add --force to enroll it again (its accounts and journal are forgotten)',
    );
  }
  const signing = await generateKeyPair('ES256', { extractable: true });
  const signingPublic = await exportJWK(signing.publicKey);
  const encryption = await generateEncryptionKeyPair();
  const base = url.toString().replace(/\/$/, '');
  let res;
  try {
    res = await request(`${base}/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        token: options.token,
        name: options.name,
        signingKey: signingPublic,
        encryptionKey: encryption.publicJwk,
        agentVersion: PRODUCT_VERSION,
        hostname: os.hostname().slice(0, 255),
      }),
      dispatcher: options.dispatcher,
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    });
  } catch (err) {
    throw new OutpostError(
      'UNAVAILABLE',
      `cannot reach the control plane at ${base}: ${(err as Error).message}`,
      {},
      err,
    );
  }
  const text = await res.body.text();
  let body: { terminalId?: string; name?: string; error?: { code: string; message: string } } = {};
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    // Not JSON: reported below with the status.
  }
  if (res.statusCode !== 201 || !body.terminalId) {
    const code = body.error && isErrorCode(body.error.code) ? body.error.code : 'UNAVAILABLE';
    throw new OutpostError(
      code,
      body.error?.message ?? `enrollment failed with HTTP ${res.statusCode}`,
    );
  }
  const identity = {
    terminalId: body.terminalId,
    name: body.name ?? options.name ?? os.hostname(),
    controlPlaneUrl: base,
    enrolledAt: new Date().toISOString(),
    signingPrivateJwk: await exportJWK(signing.privateKey),
    encryptionPrivateJwk: encryption.privateJwk,
    encryptionPublicJwk: encryption.publicJwk,
  };
  store.saveIdentity(identity);
  return { terminalId: identity.terminalId, name: identity.name };
}
