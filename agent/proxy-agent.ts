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
  // The agent reaches the control plane through a CONNECT tunnel whatever its URL's scheme, so
  // HTTPS_PROXY (the variable for tunnelled traffic) applies to http:// URLs too; HTTP_PROXY is
  // the fallback.
  const raw = flag ?? env.HTTPS_PROXY ?? env.https_proxy ?? env.HTTP_PROXY ?? env.http_proxy;
  if (!raw) return undefined;
  const noProxy = (env.NO_PROXY ?? env.no_proxy ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  const host = target.hostname.toLowerCase().replace(/^\[|\]$/g, '');
  const port =
    target.port || (target.protocol === 'https:' || target.protocol === 'wss:' ? '443' : '80');
  if (flag === undefined && noProxy.some((entry) => noProxyMatches(entry, host, port))) {
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

/** True when a NO_PROXY entry (`*`, `host`, `.domain`, `host:port`) covers the host and port. */
function noProxyMatches(entry: string, host: string, port: string): boolean {
  if (entry === '*') return true;
  const m = /^(.*?)(?::(\d+))?$/.exec(entry.replace(/^\[|\](?=:|$)/g, ''))!;
  const name = m[1]!.replace(/^\*?\./, '.');
  if (m[2] !== undefined && m[2] !== port) return false;
  return (
    host === name.replace(/^\./, '') || host.endsWith(name.startsWith('.') ? name : `.${name}`)
  );
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
    // A proxy that accepts the TCP connection and then says nothing must not hang the agent.
    req.setTimeout(15_000, () =>
      req.destroy(new Error(`the proxy ${this.proxy.host} did not answer CONNECT within 15 s`)),
    );
    req.once('connect', (res, socket) => {
      req.setTimeout(0);
      if (res.statusCode !== 200) {
        socket.destroy();
        const hint =
          res.statusCode === 407
            ? ' (proxy authentication required: put the credentials in the proxy URL)'
            : '';
        callback(
          new Error(
            `the proxy refused CONNECT to ${host}:${port} with HTTP ${res.statusCode}${hint}`,
          ),
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
