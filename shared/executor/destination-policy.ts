/**
 * Where a request may go. The agent allows only the hosts and ports of the accounts it holds
 * plus its local allowlist; the control plane's direct jobs may not reach loopback, private or
 * link-local addresses. Both are checked on the URL before connecting and again on the address
 * that DNS answered, and the connection uses exactly that checked address (no rebinding).
 */
import { BlockList, isIP } from 'node:net';

import { OutpostError } from '../errors.js';

/** Decides whether a destination may be reached. */
export interface DestinationPolicy {
  /** Checks the host name and port of a URL before anything is resolved. */
  checkUrl(url: URL): void;
  /** Checks an address that `hostname` resolved to (or the literal address itself). */
  checkAddress(hostname: string, address: string, port: number): void;
}

/** The port of a URL, with the scheme's default filled in. */
export function urlPort(url: URL): number {
  if (url.port !== '') return Number(url.port);
  return url.protocol === 'http:' ? 80 : 443;
}

/** Strips IPv6 brackets from a URL host name. */
export function bareHost(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

function blockList(ranges: Array<[string, number, 'ipv4' | 'ipv6']>): BlockList {
  const list = new BlockList();
  for (const [net, prefix, family] of ranges) list.addSubnet(net, prefix, family);
  return list;
}

/** Addresses no request should reach unless named exactly: metadata, unspecified, multicast. */
const ALWAYS_SENSITIVE = blockList([
  ['169.254.0.0', 16, 'ipv4'],
  ['0.0.0.0', 8, 'ipv4'],
  ['224.0.0.0', 4, 'ipv4'],
  ['fe80::', 10, 'ipv6'],
  ['::', 128, 'ipv6'],
  ['ff00::', 8, 'ipv6'],
  ['fd00:ec2::', 32, 'ipv6'],
]);

/** Addresses inside private networks: refused for the control plane's direct jobs. */
const PRIVATE = blockList([
  ['127.0.0.0', 8, 'ipv4'],
  ['10.0.0.0', 8, 'ipv4'],
  ['172.16.0.0', 12, 'ipv4'],
  ['192.168.0.0', 16, 'ipv4'],
  ['100.64.0.0', 10, 'ipv4'],
  ['198.18.0.0', 15, 'ipv4'],
  ['::1', 128, 'ipv6'],
  ['fc00::', 7, 'ipv6'],
]);

function family(address: string): 'ipv4' | 'ipv6' {
  return isIP(address) === 6 ? 'ipv6' : 'ipv4';
}

/** Unwraps an IPv4-mapped IPv6 address so that it meets the IPv4 rules. */
function unmapped(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1]! : address;
}

/** True for metadata, unspecified and multicast addresses. */
export function isSensitiveAddress(address: string): boolean {
  const a = unmapped(address);
  return ALWAYS_SENSITIVE.check(a, family(a));
}

/** True for loopback, private, shared and link-local addresses. */
export function isPrivateAddress(address: string): boolean {
  const a = unmapped(address);
  return PRIVATE.check(a, family(a)) || ALWAYS_SENSITIVE.check(a, family(a));
}

/** The control plane's rule for direct jobs: public addresses only, unless told otherwise. */
export class PublicOnlyPolicy implements DestinationPolicy {
  constructor(private readonly allowPrivate: boolean) {}

  checkUrl(url: URL): void {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new OutpostError('TARGET_FORBIDDEN', `scheme ${url.protocol} is not allowed`);
    }
  }

  checkAddress(hostname: string, address: string): void {
    if (this.allowPrivate) {
      if (isSensitiveAddress(address) && !isPrivateLoopback(address)) {
        throw forbidden(hostname, address, 'is a link-local, unspecified or multicast address');
      }
      return;
    }
    if (isPrivateAddress(address)) {
      throw forbidden(
        hostname,
        address,
        'is a loopback, private or link-local address; direct jobs run from the cloud and may not ' +
          'reach them (bind the account to a terminal, or set OUTPOST_ALLOW_PRIVATE_TARGETS=1 in development)',
      );
    }
  }
}

function isPrivateLoopback(address: string): boolean {
  return address === '127.0.0.1' || address === '::1';
}

function forbidden(hostname: string, address: string, why: string): OutpostError {
  const shown = hostname === address ? address : `${hostname} (${address})`;
  return new OutpostError('TARGET_FORBIDDEN', `target ${shown} ${why}`);
}

/** One allowed destination: a host name or address, and a port or any port. */
export interface AllowedDestination {
  host: string;
  port: number | null;
}

/**
 * The agent's rule: only destinations it was given. Names match names, addresses match
 * addresses; a name that resolves to a metadata or unspecified address is refused unless that
 * address itself is allowed.
 */
export class AllowListPolicy implements DestinationPolicy {
  constructor(private readonly destinations: () => AllowedDestination[]) {}

  private allows(host: string, port: number): boolean {
    const h = bareHost(host).toLowerCase();
    return this.destinations().some(
      (d) => bareHost(d.host).toLowerCase() === h && (d.port === null || d.port === port),
    );
  }

  checkUrl(url: URL): void {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new OutpostError('TARGET_FORBIDDEN', `scheme ${url.protocol} is not allowed`);
    }
    const port = urlPort(url);
    if (!this.allows(url.hostname, port)) {
      throw new OutpostError(
        'TARGET_FORBIDDEN',
        `this terminal does not send requests to ${url.hostname}:${port}: it is neither the host of an ` +
          'account it holds nor on its local allowlist (terminal-agent allow add HOST[:PORT])',
      );
    }
  }

  checkAddress(hostname: string, address: string, port: number): void {
    if (bareHost(hostname) === address) return; // a literal address already passed checkUrl
    if (isSensitiveAddress(address) && !this.allows(address, port)) {
      throw forbidden(
        hostname,
        address,
        'resolves to a link-local, unspecified or multicast address',
      );
    }
  }
}
