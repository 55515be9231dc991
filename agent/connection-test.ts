/**
 * The terminal's half of a connection test: for an account, DNS, TCP and TLS to its host (with
 * the account's trust settings and certificate expiry), then one authenticated request to
 * `settings.testPath` (default `/`). Each failing hop says what to check.
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import tls from 'node:tls';

import { toOutpostError } from '../shared/errors.js';
import type { Executor } from '../shared/executor/executor.js';
import { parseAccountBase } from '../shared/executor/target-url.js';
import { jobRequestSchema } from '../shared/jobs.js';
import type { TestHop } from '../shared/protocol/messages.js';
import type { AccountRegistry } from './account-registry.js';

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

function hop(
  name: string,
  ok: boolean,
  ms: number | null,
  detail: string,
  hint: string | null,
): TestHop {
  return { name, ok, ms, detail, hint };
}

/** Runs the hops for one account (or none: only the terminal hop, answered by the caller). */
export async function runConnectionTest(
  accounts: AccountRegistry,
  executor: Executor,
  accountId: string | null,
): Promise<TestHop[]> {
  if (accountId === null) return [];
  const account = accounts.resolve(accountId);
  if (!account)
    return [
      hop(
        'dns',
        false,
        null,
        `this terminal does not hold account ${accountId}`,
        'check the account is bound to this terminal',
      ),
    ];
  const hops: TestHop[] = [];
  let base;
  try {
    base = parseAccountBase(account.host, account.port);
  } catch (err) {
    return [hop('dns', false, null, toOutpostError(err).message, 'fix the account host')];
  }
  const host = base.hostname.replace(/^\[|\]$/g, '');
  const r = await timed(async () => (net.isIP(host) ? host : (await dns.lookup(host)).address));
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
    accounts.policy.checkUrl(new URL(`${base.protocol}//${base.hostname}:${base.port}/`));
    accounts.policy.checkAddress(host, address, base.port);
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
