/**
 * `terminal-agent doctor`: one line per check with a verdict and, when it fails, what to do.
 * DNS, TCP and TLS to the control plane (through the proxy when one is set), clock skew against
 * the control plane, the data folder's permissions, and each account's host.
 */
import dns from 'node:dns/promises';
import { statSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

import { request, Agent as UndiciAgent, ProxyAgent } from 'undici';

import { createLogger } from '../shared/logger.js';
import { AccountRegistry } from './account-registry.js';
import type { AgentStore } from './agent-store.js';
import { runConnectionTest } from './connection-test.js';
import { JobRunner } from './job-runner.js';
import { proxyFor } from './proxy-agent.js';
import { localKeyPath } from './local-key.js';

/** Options of the doctor. */
export interface DoctorOptions {
  ca?: string[];
  proxyFlag?: string;
  out: NodeJS.WritableStream;
}

/** Runs every check and prints one line each; resolves true when all passed. */
export async function runDoctor(store: AgentStore, options: DoctorOptions): Promise<boolean> {
  let allOk = true;
  const line = (ok: boolean | 'warn', name: string, detail: string, fix?: string) => {
    if (ok === false) allOk = false;
    const verdict = ok === true ? 'OK  ' : ok === 'warn' ? 'WARN' : 'FAIL';
    options.out.write(
      `${verdict}  ${name.padEnd(22)} ${detail}${ok !== true && fix ? `\n      fix: ${fix}` : ''}\n`,
    );
  };
  const summary = store.identitySummary();
  if (!summary) {
    line(
      false,
      'enrollment',
      `the data dir ${store.dataDir} is not enrolled`,
      'run terminal-agent enroll --url URL --token TOKEN',
    );
    return false;
  }
  line(true, 'enrollment', `terminal ${summary.terminalId}`);
  const perms = checkPermissions(store.dataDir);
  line(perms.ok, 'data folder', perms.detail, perms.fix);

  const url = new URL(summary.controlPlaneUrl);
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const proxy = proxyFor(url, options.proxyFlag);
  if (proxy) {
    line(true, 'proxy', `connections go through ${proxy.host}`);
  } else {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    let address = host;
    try {
      if (!net.isIP(host)) address = (await dns.lookup(host)).address;
      line(true, 'control plane DNS', `${host} resolves to ${address}`);
    } catch (err) {
      line(
        false,
        'control plane DNS',
        `cannot resolve ${host}: ${(err as Error).message}`,
        'check DNS on this machine',
      );
      return false;
    }
    const tcp = await connectTcp(address, port);
    line(
      tcp === null,
      'control plane TCP',
      tcp ?? `connected to ${address}:${port}`,
      'check firewalls and outbound rules for this port',
    );
    if (tcp !== null) return false;
    if (url.protocol === 'https:') {
      const t = await connectTls(address, port, host, options.ca);
      line(
        t === null,
        'control plane TLS',
        t ?? 'certificate verified',
        'pass --ca with the CA of the control plane, or check TLS interception',
      );
    }
  }
  const dispatcher = proxy
    ? new ProxyAgent({ uri: proxy.toString(), requestTls: { ca: options.ca } })
    : new UndiciAgent({ connect: { ca: options.ca, timeout: 5000 } });
  try {
    const started = Date.now();
    const res = await request(`${summary.controlPlaneUrl}/v1/health`, {
      dispatcher,
      headersTimeout: 5000,
      bodyTimeout: 5000,
    });
    await res.body.dump();
    const date = res.headers.date;
    const serverTime = typeof date === 'string' ? Date.parse(date) : NaN;
    if (Number.isNaN(serverTime))
      line('warn', 'clock skew', 'the control plane sent no Date header');
    else {
      const skew = Math.round((Date.now() - (serverTime + (Date.now() - started) / 2)) / 1000);
      const ok = Math.abs(skew) <= 30;
      line(
        ok,
        'clock skew',
        `${skew} s against the control plane`,
        'sync the clock (NTP): connection tokens are refused beyond 30 s',
      );
    }
    line(
      res.statusCode === 200,
      'control plane HTTP',
      `GET /v1/health answered ${res.statusCode}`,
      'check the URL given at enrollment',
    );
  } catch (err) {
    line(
      false,
      'control plane HTTP',
      `GET /v1/health failed: ${(err as Error).message}`,
      'check the URL, proxy and CA settings',
    );
  } finally {
    await dispatcher.close();
  }

  const identity = store.identity()!;
  const logger = createLogger({ level: 'error' });
  const registry = new AccountRegistry(store, identity, logger);
  const runner = new JobRunner({
    store,
    accounts: registry,
    channel: { connected: false, send: () => false, sendBinary: async () => false },
    logger,
    maxConcurrency: 1,
  });
  for (const held of store.accounts()) {
    const hops = await runConnectionTest(registry, runner.executor, held.descriptor.id);
    for (const h of hops.filter((x) => x.name !== 'request')) {
      line(h.ok, `${held.descriptor.name.slice(0, 14)} ${h.name}`, h.detail, h.hint ?? undefined);
    }
  }
  await runner.close();
  return allOk;
}

function checkPermissions(dataDir: string): { ok: boolean; detail: string; fix?: string } {
  if (process.platform === 'win32')
    return { ok: true, detail: 'permissions are set by the installer (SYSTEM and Administrators)' };
  try {
    const dir = statSync(dataDir);
    const key = statSync(localKeyPath(dataDir));
    const loose = (dir.mode & 0o077) !== 0 || (key.mode & 0o077) !== 0;
    return loose
      ? {
          ok: false,
          detail: `${dataDir} or its key file is readable by others`,
          fix: `chmod 700 ${dataDir} && chmod 600 ${localKeyPath(dataDir)}`,
        }
      : { ok: true, detail: `${dataDir} is private to its owner` };
  } catch (err) {
    return { ok: false, detail: (err as Error).message, fix: 'check the data dir' };
  }
}

function connectTcp(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: 5000 });
    s.once('connect', () => {
      s.destroy();
      resolve(null);
    });
    s.once('timeout', () => {
      s.destroy();
      resolve(`connecting to ${host}:${port} timed out`);
    });
    s.once('error', (err) => resolve(`cannot connect to ${host}:${port}: ${err.message}`));
  });
}

function connectTls(
  address: string,
  port: number,
  servername: string,
  ca?: string[],
): Promise<string | null> {
  return new Promise((resolve) => {
    const s = tls.connect({
      host: address,
      port,
      servername: net.isIP(servername) ? undefined : servername,
      ca,
      timeout: 5000,
    });
    s.once('secureConnect', () => {
      s.destroy();
      resolve(null);
    });
    s.once('timeout', () => {
      s.destroy();
      resolve('TLS handshake timed out');
    });
    s.once('error', (err: Error) => resolve(`TLS failed: ${err.message}`));
  });
}
