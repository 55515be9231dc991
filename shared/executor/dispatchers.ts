/**
 * undici dispatchers per account: each carries the account's TLS material and a DNS lookup that
 * checks every answer against the destination policy before the socket connects to it.
 */
import { createHash } from 'node:crypto';
import dns from 'node:dns';
import type { LookupAddress } from 'node:dns';

import { Agent } from 'undici';

import { OutpostError } from '../errors.js';
import type { TlsMaterial } from '../auth/types.js';
import type { DestinationPolicy } from './destination-policy.js';

/** Connection options of every outgoing request. */
export interface ConnectionOptions {
  connectTimeoutMs: number;
  keepAliveTimeoutMs?: number;
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/** A DNS lookup for net/tls that refuses answers the policy forbids. */
export function checkedLookup(policy: DestinationPolicy, port: () => number) {
  return (hostname: string, options: dns.LookupOptions, callback: LookupCallback): void => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      try {
        for (const a of addresses) policy.checkAddress(hostname, a.address, port());
      } catch (e) {
        return callback(e as NodeJS.ErrnoException, []);
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0];
      if (!first)
        return callback(
          Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }),
          [],
        );
      callback(null, first.address, first.family);
    });
  };
}

/** Caches one undici Agent per TLS material and port; closes them on `close`. */
export class DispatcherCache {
  private readonly agents = new Map<string, Agent>();

  constructor(
    private readonly policy: DestinationPolicy,
    private readonly options: ConnectionOptions,
  ) {}

  /** The dispatcher for a destination port with the given TLS material. */
  get(tls: TlsMaterial, port: number): Agent {
    const key = `${port}:${fingerprint(tls)}`;
    let agent = this.agents.get(key);
    if (!agent) {
      agent = new Agent({
        connect: {
          timeout: this.options.connectTimeoutMs,
          lookup: checkedLookup(this.policy, () => port),
          ca: tls.ca,
          cert: tls.cert,
          key: tls.key,
          passphrase: tls.passphrase,
          pfx: tls.pfx,
          rejectUnauthorized: true,
        },
        keepAliveTimeout: this.options.keepAliveTimeoutMs ?? 4_000,
        connections: 64,
      });
      this.agents.set(key, agent);
      if (this.agents.size > 500) this.evictOldest();
    }
    return agent;
  }

  private evictOldest(): void {
    const [key, agent] = this.agents.entries().next().value as [string, Agent];
    this.agents.delete(key);
    void agent.close().catch(() => undefined);
  }

  /** Closes every pooled connection. */
  async close(): Promise<void> {
    const all = [...this.agents.values()];
    this.agents.clear();
    await Promise.all(all.map((a) => a.close().catch(() => undefined)));
  }
}

function fingerprint(tls: TlsMaterial): string {
  const h = createHash('sha256');
  h.update(
    JSON.stringify([tls.ca ?? null, tls.cert ?? null, tls.key ?? null, tls.passphrase ?? null]),
  );
  if (tls.pfx) h.update(tls.pfx);
  return h.digest('hex');
}

/** The connection a request failed on, when the executor knows it. */
export interface FailedConnection {
  url: URL;
  tls: TlsMaterial;
}

/**
 * True when an HTTPS server closed a fresh connection after the TLS handshake without sending a
 * byte. Node's TLS servers (and others that check the client certificate after a TLS 1.3
 * handshake) refuse a missing or untrusted client certificate this way, with no TLS alert; a
 * handshake cut off earlier fails with its own TLS error, and a reused keep-alive connection has
 * read earlier answers.
 */
function closedAfterHandshake(err: { code?: string; socket?: unknown }, on: FailedConnection) {
  const socket = err.socket as { bytesRead?: unknown } | undefined;
  return on.url.protocol === 'https:' && err.code === 'UND_ERR_SOCKET' && socket?.bytesRead === 0;
}

/** Maps a low-level network error to a stable code. */
export function classifyNetworkError(
  err: unknown,
  stage: 'connect' | 'body',
  on?: FailedConnection,
): OutpostError {
  if (err instanceof OutpostError) return err;
  const e = err as { code?: string; message?: string; cause?: unknown };
  if (e.cause instanceof OutpostError) return e.cause;
  const code = e.code ?? (e.cause as { code?: string } | undefined)?.code ?? '';
  const message = e.message ?? String(err);
  const wrap = (c: ConstructorParameters<typeof OutpostError>[0], text: string) =>
    new OutpostError(c, text, {}, err);
  if (code === 'UND_ERR_CONNECT_TIMEOUT')
    return wrap('TIMEOUT_CONNECT', 'connecting to the target timed out');
  if (code === 'UND_ERR_HEADERS_TIMEOUT') {
    return wrap('TIMEOUT_FIRST_BYTE', 'the target accepted the request but did not answer in time');
  }
  if (code === 'UND_ERR_BODY_TIMEOUT')
    return wrap('TIMEOUT_IDLE_BODY', 'the target stopped sending its body');
  if (code === 'ECONNREFUSED')
    return wrap('CONNECTION_REFUSED', `the target refused the connection (${message})`);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME') {
    return wrap('DNS_FAILED', `the target's host name could not be resolved (${message})`);
  }
  if (
    /^(ERR_TLS|ERR_SSL|CERT_|UNABLE_TO|DEPTH_ZERO|SELF_SIGNED|ERR_OSSL|HOSTNAME_MISMATCH)/.test(
      code,
    ) ||
    /certificate|SSL|TLS/i.test(message)
  ) {
    return wrap('TLS_FAILED', `TLS with the target failed: ${message}`);
  }
  // Only for accounts with TLS material of their own: there a refused client certificate (or a
  // server that demands one) is the likely reading of this silence. A server that took the
  // certificate and then died before answering looks the same and is reported as TLS too.
  const clientCert = on?.tls.cert !== undefined || on?.tls.pfx !== undefined;
  if (stage === 'connect' && on && (clientCert || on.tls.ca) && closedAfterHandshake(e, on)) {
    return wrap(
      'TLS_FAILED',
      'the target closed the connection right after the TLS handshake without answering: ' +
        (clientCert
          ? 'it most likely refused the client certificate'
          : 'it may require a client certificate, and this account sends none'),
    );
  }
  if (stage === 'body') return wrap('BODY_INCOMPLETE', `the target's body was cut off: ${message}`);
  if (
    code === 'EHOSTUNREACH' ||
    code === 'ENETUNREACH' ||
    code === 'ECONNRESET' ||
    code === 'UND_ERR_SOCKET'
  ) {
    return wrap('TARGET_UNREACHABLE', `the target could not be reached: ${message}`);
  }
  return wrap('REQUEST_FAILED', `the request failed: ${message}`);
}
