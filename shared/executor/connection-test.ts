/**
 * A connection test of an account: DNS, TCP and TLS to its host (with the account's trust
 * settings and certificate expiry), then one authenticated request to `settings.testPath`
 * (default `/`). Each failing hop says what to check. Runs wherever the account's jobs run.
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import tls from 'node:tls';

import type { ResolvedAccount } from '../accounts.js';
import { toOutpostError } from '../errors.js';
import { jobRequestSchema } from '../jobs.js';
import type { TestHop } from '../protocol/messages.js';
import type { DestinationPolicy } from './destination-policy.js';
import type { Executor } from './executor.js';
import { parseAccountBase } from './target-url.js';

const HOP_TIMEOUT_MS = 5000;

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value?: T; error?: Error }> {
  const start = performance.now();
  try {
    const value = await fn();
    return { ms: Math.round(performance.now() - start), value };
  } catch (error) {
    return { ms: Math.round(performance.now() - start), error: error as Error };
  }
}

/** One hop of a test, built by its parts. */
export function hop(
  name: string,
  ok: boolean,
  ms: number | null,
  detail: string,
  hint: string | null,
): TestHop {
  return { name, ok, ms, detail, hint };
}

/** Resolves a host name to one address (the system resolver by default). */
export type HostResolver = (host: string) => Promise<string>;

const systemResolver: HostResolver = async (host) => (await dns.lookup(host)).address;

/** Runs the dns, tcp, tls and request hops for one account. */
export async function testAccountConnection(
  account: ResolvedAccount,
  executor: Executor,
  policy: DestinationPolicy,
  resolve: HostResolver = systemResolver,
): Promise<TestHop[]> {
  const hops: TestHop[] = [];
  let base;
  try {
    base = parseAccountBase(account.host, account.port);
  } catch (err) {
    return [hop('dns', false, null, toOutpostError(err).message, 'fix the account host')];
  }
  const host = base.hostname.replace(/^\[|\]$/g, '');
  const r = await timed(async () => (net.isIP(host) ? host : await resolve(host)));
  if (r.error) {
    hops.push(
      hop(
        'dns',
        false,
        r.ms,
        `cannot resolve ${host}: ${r.error.message}`,
        'check the host name and the DNS servers of the terminal machine',
      ),
    );
    return hops;
  }
  const address = r.value!;
  hops.push(hop('dns', true, r.ms, `${host} resolves to ${address}`, null));
  try {
    policy.checkUrl(new URL(`${base.protocol}//${base.hostname}:${base.port}/`));
    policy.checkAddress(host, address, base.port);
  } catch (err) {
    hops.push(
      hop(
        'tcp',
        false,
        null,
        toOutpostError(err).message,
        'allow the host on the terminal: terminal-agent allow add HOST[:PORT]',
      ),
    );
    return hops;
  }
  const t = await timed(
    () =>
      new Promise<void>((resolve, reject) => {
        const socket = net.connect({ host: address, port: base.port, timeout: HOP_TIMEOUT_MS });
        socket.once('connect', () => {
          socket.destroy();
          resolve();
        });
        socket.once('timeout', () => {
          socket.destroy();
          reject(new Error('timed out'));
        });
        socket.once('error', reject);
      }),
  );
  if (t.error) {
    hops.push(
      hop(
        'tcp',
        false,
        t.ms,
        `cannot connect to ${address}:${base.port}: ${t.error.message}`,
        'check that the service listens on that port and that no firewall blocks the terminal',
      ),
    );
    return hops;
  }
  hops.push(hop('tcp', true, t.ms, `connected to ${address}:${base.port}`, null));
  if (base.protocol === 'https:') {
    const material = executor.tlsFor(account);
    const s = await timed(
      () =>
        new Promise<tls.PeerCertificate>((resolve, reject) => {
          const socket = tls.connect({
            host: address,
            port: base.port,
            servername: net.isIP(host) ? undefined : host,
            ca: material.ca,
            cert: material.cert,
            key: material.key,
            passphrase: material.passphrase,
            pfx: material.pfx,
            timeout: HOP_TIMEOUT_MS,
          });
          socket.once('secureConnect', () => {
            const cert = socket.getPeerCertificate();
            const err = tls.checkServerIdentity(host, cert);
            socket.destroy();
            if (err) reject(err);
            else resolve(cert);
          });
          socket.once('timeout', () => {
            socket.destroy();
            reject(new Error('timed out'));
          });
          socket.once('error', reject);
        }),
    );
    if (s.error) {
      hops.push(
        hop(
          'tls',
          false,
          s.ms,
          `TLS failed: ${s.error.message}`,
          'give the account the CA that signed the server certificate (settings.caPem), or check the host name',
        ),
      );
      return hops;
    }
    const days = Math.floor((Date.parse(s.value!.valid_to) - Date.now()) / 86_400_000);
    hops.push(
      hop(
        'tls',
        true,
        s.ms,
        `certificate for ${s.value!.subject?.CN ?? host} valid for ${days} more days`,
        days < 30 ? 'the server certificate expires soon' : null,
      ),
    );
  } else {
    hops.push(hop('tls', true, 0, 'plain HTTP: no TLS', null));
  }
  const path = typeof account.settings.testPath === 'string' ? account.settings.testPath : '/';
  let status = 0;
  const q = await timed(() =>
    executor.execute(
      {
        account,
        request: jobRequestSchema.parse({ method: 'GET', path }),
        signal: AbortSignal.timeout(10_000),
      },
      {
        head: async (s) => {
          status = s;
        },
        chunk: async () => {},
      },
    ),
  );
  if (q.error) {
    const e = toOutpostError(q.error);
    hops.push(
      hop(
        'request',
        false,
        q.ms,
        `GET ${path} failed: ${e.code}: ${e.message}`,
        'check the account credentials and settings.testPath',
      ),
    );
  } else {
    const ok = status < 400;
    hops.push(
      hop(
        'request',
        ok,
        q.ms,
        `GET ${path} answered ${status}`,
        ok
          ? null
          : status === 401 || status === 403
            ? 'the target refused the credentials: check the account secrets'
            : 'set settings.testPath to a path that answers 2xx',
      ),
    );
  }
  return hops;
}
