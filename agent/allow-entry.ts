/** Parses and prints `HOST[:PORT]` for the local allowlist. */
import { isIP } from 'node:net';

import { OutpostError } from '../shared/errors.js';

/** A parsed allowlist entry; `port` null means any port. */
export function parseAllowEntry(value: string): { host: string; port: number | null } {
  const v = value.trim().toLowerCase();
  let host = v;
  let port: number | null = null;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(v);
  if (bracket) {
    host = bracket[1]!;
    port = bracket[2] ? Number(bracket[2]) : null;
  } else if (isIP(v) !== 6) {
    const m = /^([^:]+):(\d+)$/.exec(v);
    if (m) {
      host = m[1]!;
      port = Number(m[2]);
    }
  }
  const validName =
    /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(host);
  if (!validName && isIP(host) === 0) {
    throw new OutpostError(
      'VALIDATION_FAILED',
      `"${value}" is not HOST or HOST:PORT (a host name or an IP address)`,
    );
  }
  if (port !== null && (port < 1 || port > 65535)) {
    throw new OutpostError('VALIDATION_FAILED', `port ${port} is not from 1 to 65535`);
  }
  return { host, port };
}

/** An allowlist entry as `parseAllowEntry` reads it back: `[::1]:8080` for IPv6 with a port. */
export function formatAllowEntry(entry: { host: string; port: number | null }): string {
  if (entry.port === null) return entry.host;
  const host = isIP(entry.host) === 6 ? `[${entry.host}]` : entry.host;
  return `${host}:${entry.port}`;
}
