/**
 * What the attacker's suite needs besides the process harness: loopback servers that record
 * every request they receive, a raw WebSocket upgrade that reports how the control plane
 * answered, and connection tokens signed (or forged) by the test itself.
 */
import { randomUUID } from 'node:crypto';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';

import { AgentStore } from '../../agent/agent-store.js';

/** One request as a recording server saw it. */
export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A loopback HTTP server that records requests; `reply` decides each answer. */
export interface RecordingServer {
  server: Server;
  url: string;
  port: number;
  seen: SeenRequest[];
  close(): Promise<void>;
}

type Reply = (req: SeenRequest) => {
  status: number;
  headers?: Record<string, string>;
  body?: string;
};

/** Starts a recording server on a loopback address (127.0.0.1 unless told otherwise). */
export async function recordingServer(
  reply: Reply = () => ({ status: 200, body: 'ok' }),
  host = '127.0.0.1',
): Promise<RecordingServer> {
  const seen: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const entry = {
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      seen.push(entry);
      const answer = reply(entry);
      res.writeHead(answer.status, { 'content-type': 'text/plain', ...answer.headers });
      res.end(answer.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    url: `http://${host}:${port}`,
    port,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** How the control plane answered a WebSocket upgrade: 101, or an error status and body. */
export interface UpgradeAnswer {
  status: number;
  body: { error?: { code: string; message: string } } | null;
}

/** Asks the agent channel for an upgrade with `token`; closes the socket when it is accepted. */
export function rawUpgrade(controlPlaneUrl: string, token: string | null): Promise<UpgradeAnswer> {
  const url = new URL('/v1/agent/connect', controlPlaneUrl);
  return new Promise((resolve, reject) => {
    const req = request(url, {
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': Buffer.from(randomUUID().slice(0, 16)).toString('base64'),
        ...(token === null ? {} : { authorization: `Bearer ${token}` }),
      },
    });
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      resolve({ status: 101, body: null });
    });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The private signing key an enrolled agent keeps in its data dir. */
export function agentSigningKey(dataDir: string): JWK {
  const store = new AgentStore(dataDir);
  try {
    const identity = store.identity();
    if (!identity) throw new Error(`${dataDir} is not enrolled`);
    return identity.signingPrivateJwk;
  } finally {
    store.close();
  }
}

type SigningKey = Parameters<SignJWT['sign']>[0];

/** Signs a connection token as the agent does, with times that a test may move. */
export async function signTerminalToken(
  terminalId: string,
  key: JWK | SigningKey,
  times: { issuedAt?: number; expiresAt?: number } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const signingKey = isJwk(key) ? await importJWK(key, 'ES256') : key;
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
    .setIssuer(terminalId)
    .setSubject(terminalId)
    .setAudience('outpost-agent-channel')
    .setIssuedAt(times.issuedAt ?? now)
    .setExpirationTime(times.expiresAt ?? now + 60)
    .setJti(randomUUID())
    .sign(signingKey);
}

function isJwk(key: JWK | SigningKey): key is JWK {
  return typeof (key as JWK).kty === 'string';
}

/** A token signed with a fresh key pair that the control plane has never seen. */
export async function tokenFromAnotherKey(terminalId: string): Promise<string> {
  const { privateKey } = await generateKeyPair('ES256');
  return signTerminalToken(terminalId, privateKey);
}

/** An unsigned token (`alg: none`) that claims to be the terminal. */
export function unsignedToken(terminalId: string): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${part({ alg: 'none', typ: 'JWT' })}.${part({
    iss: terminalId,
    sub: terminalId,
    aud: 'outpost-agent-channel',
    iat: now,
    exp: now + 60,
    jti: randomUUID(),
  })}.`;
}
