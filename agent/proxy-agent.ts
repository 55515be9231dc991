/**
 * Outbound connections through an HTTP proxy with CONNECT, as customer networks often require:
 * `--proxy URL`, else HTTPS_PROXY / HTTP_PROXY, minus the hosts of NO_PROXY. Proxy credentials
 * come from the proxy URL's user info and are sent as Basic Proxy-Authorization.
 */
import http, { type AgentOptions } from 'node:http';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';

import { OutpostError } from '../shared/errors.js';
import { registerSecret } from '../shared/logger.js';

/** Picks the proxy for a target URL from a flag and the environment; undefined for none. */
export function proxyFor(
  target: URL,
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): URL | undefined {
  const raw =
    flag ??
    (target.protocol === 'https:' || target.protocol === 'wss:'
      ? (env.HTTPS_PROXY ?? env.https_proxy ?? env.HTTP_PROXY ?? env.http_proxy)
      : (env.HTTP_PROXY ?? env.http_proxy));
  if (!raw) return undefined;
  const noProxy = (env.NO_PROXY ?? env.no_proxy ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  const host = target.hostname.toLowerCase();
  if (
    flag === undefined &&
    noProxy.some(
      (n) =>
        n === '*' ||
        host === n.replace(/^\./, '') ||
        host.endsWith(n.startsWith('.') ? n : `.${n}`),
    )
  ) {
    return undefined;
  }
  let proxy: URL;
  try {
    proxy = new URL(raw);
  } catch {
    throw new OutpostError(
      'VALIDATION_FAILED',
      `proxy "${raw}" is not a URL; give e.g. http://proxy.corp:3128`,
      { field: 'proxy' },
    );
  }
  if (proxy.protocol !== 'http:') {
    throw new OutpostError(
      'VALIDATION_FAILED',
      'only http:// proxies (with CONNECT) are supported',
      { field: 'proxy' },
    );
  }
  if (proxy.password) registerSecret(decodeURIComponent(proxy.password));
  return proxy;
}

/** An http.Agent whose connections are tunnels through a proxy (TLS on top when secure). */
export class ConnectProxyAgent extends http.Agent {
  constructor(
    private readonly proxy: URL,
    private readonly secure: boolean,
    options: AgentOptions = {},
  ) {
    super({ keepAlive: false, ...options });
  }

  override createConnection(
    options: {
      host?: string;
      port?: number | string;
      servername?: string;
      ca?: string | string[];
    } & tls.ConnectionOptions,
    callback: (err: Error | null, socket?: Duplex) => void,
  ): Duplex | undefined {
    const host = options.host ?? 'localhost';
    const port = Number(options.port ?? (this.secure ? 443 : 80));
    const headers: Record<string, string> = { host: `${host}:${port}` };
    if (this.proxy.username) {
      const user = decodeURIComponent(this.proxy.username);
      const pass = decodeURIComponent(this.proxy.password);
      headers['proxy-authorization'] = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    }
    const req = http.request({
      host: this.proxy.hostname,
      port: Number(this.proxy.port || 80),
      method: 'CONNECT',
      path: `${host.includes(':') ? `[${host}]` : host}:${port}`,
      headers,
      agent: false,
    });
    req.once('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        callback(
          new Error(`the proxy refused CONNECT to ${host}:${port} with HTTP ${res.statusCode}`),
        );
        return;
      }
      if (!this.secure) {
        callback(null, socket);
        return;
      }
      const secureSocket = tls.connect({
        ...options,
        socket,
        servername: options.servername ?? host,
      });
      secureSocket.once('secureConnect', () => callback(null, secureSocket));
      secureSocket.once('error', (err: Error) => callback(err));
    });
    req.once('error', (err) =>
      callback(new Error(`cannot reach the proxy ${this.proxy.host}: ${err.message}`)),
    );
    req.end();
    return undefined;
  }
}
