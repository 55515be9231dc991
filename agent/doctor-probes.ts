/**
 * The network probes of `terminal-agent doctor`: name lookup, a TCP connection, a TLS handshake
 * (directly or inside a proxy tunnel) and a CONNECT tunnel through an HTTP proxy. Each resolves
 * to a result and never throws, with a timeout, so that one dead host cannot hang the doctor.
 */
import dns from 'node:dns/promises';
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';

/** How long one probe may take. */
export const PROBE_TIMEOUT_MS = 5000;

/** A probe's answer: a value, or why it failed. */
export type Probe<T> = { ok: true; value: T } | { ok: false; error: string };

/** Resolves a host name to one address; an IP address is returned as it is. */
export async function probeDns(host: string): Promise<Probe<string>> {
  if (net.isIP(host)) return { ok: true, value: host };
  try {
    const signal = AbortSignal.timeout(PROBE_TIMEOUT_MS);
    const lookup = dns.lookup(host);
    const aborted = new Promise<never>((_, reject) =>
      signal.addEventListener('abort', () => reject(new Error('the lookup timed out'))),
    );
    return { ok: true, value: (await Promise.race([lookup, aborted])).address };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

/** Opens and closes a TCP connection. */
export function probeTcp(address: string, port: number): Promise<Probe<null>> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: address, port, timeout: PROBE_TIMEOUT_MS });
    socket.once('connect', () => {
      socket.destroy();
      resolve({ ok: true, value: null });
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve({ ok: false, error: `connecting to ${address}:${port} timed out` });
    });
    socket.once('error', (err) => resolve({ ok: false, error: err.message }));
  });
}

/** What a TLS probe is given: where to connect, or an open tunnel, and what to trust. */
export interface TlsProbeOptions {
  address: string;
  port: number;
  /** The name the certificate must carry (a host name or an IP address). */
  host: string;
  /** An open tunnel to run the handshake in, instead of a new connection. */
  socket?: Duplex;
  ca?: string | string[];
  cert?: string;
  key?: string;
  pfx?: Buffer;
  passphrase?: string;
}

/** What a successful handshake showed. */
export interface TlsProbeResult {
  subject: string;
  validTo: string;
  daysLeft: number;
}

/** Runs a TLS handshake that verifies the chain and the name, then closes. */
export function probeTls(
  options: TlsProbeOptions,
  now = Date.now(),
): Promise<Probe<TlsProbeResult>> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: options.address,
      port: options.port,
      socket: options.socket,
      servername: net.isIP(options.host) ? undefined : options.host,
      checkServerIdentity: (_name, cert) => tls.checkServerIdentity(options.host, cert),
      ca: options.ca,
      cert: options.cert,
      key: options.key,
      pfx: options.pfx,
      passphrase: options.passphrase,
      timeout: PROBE_TIMEOUT_MS,
    });
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate();
      socket.destroy();
      const validTo = new Date(cert.valid_to).toISOString();
      resolve({
        ok: true,
        value: {
          subject: [cert.subject?.CN ?? options.host].flat().join(', '),
          validTo,
          daysLeft: Math.floor((Date.parse(validTo) - now) / 86_400_000),
        },
      });
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve({ ok: false, error: 'the TLS handshake timed out' });
    });
    socket.once('error', (err: Error) => resolve({ ok: false, error: err.message }));
  });
}

/**
 * Asks an HTTP proxy for a CONNECT tunnel to host:port; on success the caller owns the socket.
 * Proxy credentials come from the proxy URL, as for the agent's own connection.
 */
export function probeConnectTunnel(proxy: URL, host: string, port: number): Promise<Probe<Duplex>> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { host: `${host}:${port}` };
    if (proxy.username) {
      const user = decodeURIComponent(proxy.username);
      const pass = decodeURIComponent(proxy.password);
      headers['proxy-authorization'] = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    }
    const req = http.request({
      host: proxy.hostname.replace(/^\[|\]$/g, ''),
      port: Number(proxy.port || 80),
      method: 'CONNECT',
      path: `${net.isIPv6(host) ? `[${host}]` : host}:${port}`,
      headers,
      agent: false,
      timeout: PROBE_TIMEOUT_MS,
    });
    req.once('connect', (res, socket) => {
      if (res.statusCode === 200) resolve({ ok: true, value: socket });
      else {
        socket.destroy();
        resolve({ ok: false, error: `the proxy answered CONNECT with HTTP ${res.statusCode}` });
      }
    });
    req.once('timeout', () => {
      req.destroy();
      resolve({ ok: false, error: 'the proxy did not answer CONNECT in time' });
    });
    req.once('error', (err) => resolve({ ok: false, error: err.message }));
    req.end();
  });
}
