/**
 * `terminal-agent doctor`: one line per check with a verdict, and under every check that is not
 * OK a line with what to do. The checks: the data folder's permissions, the enrollment, DNS,
 * TCP and TLS to the control plane (through the proxy when one is set), its health endpoint and
 * the clock skew against its Date header, the agent process, and DNS, TCP and TLS to each
 * account's host. Only FAIL makes the exit code 1; WARN and SKIP do not.
 *
 * The doctor only connects: it sends no request to an account's host, so it never spends a
 * token, starts a login or changes auth state that a running agent relies on.
 */
import { statSync } from 'node:fs';
import net from 'node:net';

import { request, Agent as UndiciAgent, ProxyAgent } from 'undici';

import { authHandler } from '../shared/auth/registry.js';
import { parseCaBundle } from '../shared/auth/common-settings.js';
import type { ResolvedAccount } from '../shared/accounts.js';
import { parseAccountBase, type AccountBase } from '../shared/executor/target-url.js';
import { createLogger } from '../shared/logger.js';
import { AccountRegistry } from './account-registry.js';
import { agentProcessAlive } from './agent-process.js';
import type { AgentStore } from './agent-store.js';
import {
  probeConnectTunnel,
  probeDns,
  probeTcp,
  probeTls,
  PROBE_TIMEOUT_MS,
} from './doctor-probes.js';
import { localKeyPath } from './local-key.js';
import { proxyFor } from './proxy-agent.js';

/** Options of the doctor. */
export interface DoctorOptions {
  ca?: string[];
  proxyFlag?: string;
  out: NodeJS.WritableStream;
}

/** A check's verdict. SKIP: it could not run because an earlier check failed or it does not apply. */
export type Verdict = 'OK' | 'WARN' | 'FAIL' | 'SKIP';

/** Clock skew beyond this fails: the control plane refuses connection tokens past 30 s. */
export const MAX_CLOCK_SKEW_S = 30;
/** Clock skew beyond this is worth a warning, well before it breaks anything. */
export const WARN_CLOCK_SKEW_S = 5;

const NAME_WIDTH = 26;

/** Prints check lines and remembers whether any failed. */
class Report {
  failed = false;

  constructor(private readonly out: NodeJS.WritableStream) {}

  line(verdict: Verdict, name: string, detail: string, fix?: string): void {
    if (verdict === 'FAIL') this.failed = true;
    const head = `${verdict.padEnd(4)}  ${name.padEnd(NAME_WIDTH)} ${detail}\n`;
    const tail = verdict !== 'OK' && verdict !== 'SKIP' && fix ? `      fix: ${fix}\n` : '';
    this.out.write(head + tail);
  }
}

/** Runs every check and prints one line each; resolves true when none failed. */
export async function runDoctor(store: AgentStore, options: DoctorOptions): Promise<boolean> {
  const report = new Report(options.out);
  const perms = checkPermissions(store.dataDir);
  report.line(perms.verdict, 'data folder', perms.detail, perms.fix);

  const summary = store.identitySummary();
  if (!summary) {
    report.line(
      'FAIL',
      'enrollment',
      `the data dir ${store.dataDir} is not enrolled`,
      'terminal-agent enroll --url URL --token TOKEN (or the token in OUTPOST_ENROLLMENT_TOKEN)',
    );
    return false;
  }
  report.line('OK', 'enrollment', `terminal ${summary.terminalId} (${summary.name})`);

  const reachable = await checkControlPlane(report, new URL(summary.controlPlaneUrl), options);
  if (reachable) await checkHealthAndClock(report, summary.controlPlaneUrl, options);
  else {
    const why = 'needs a connection to the control plane';
    report.line('SKIP', 'control plane HTTP', why);
    report.line('SKIP', 'clock skew', why);
  }
  checkAgentProcess(report, store);
  await checkAccounts(report, store);
  return !report.failed;
}

/** DNS, TCP and TLS to the control plane, or to the proxy and through its tunnel. */
async function checkControlPlane(
  report: Report,
  url: URL,
  options: DoctorOptions,
): Promise<boolean> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const secure = url.protocol === 'https:';
  const proxy = proxyFor(url, options.proxyFlag);
  const tlsFix =
    'pass --ca with the CA of the control plane, or ask whether a proxy intercepts TLS';

  if (proxy) {
    const proxyHost = proxy.hostname.replace(/^\[|\]$/g, '');
    const proxyPort = Number(proxy.port || 80);
    const where = `${proxyHost}:${proxyPort}`;
    const resolved = await probeDns(proxyHost);
    if (!resolved.ok) {
      report.line(
        'FAIL',
        'proxy DNS',
        `cannot resolve ${proxyHost}: ${resolved.error}`,
        'check the proxy URL (--proxy or HTTPS_PROXY) and DNS',
      );
      return false;
    }
    report.line('OK', 'proxy DNS', dnsDetail(proxyHost, resolved.value));
    const tcp = await probeTcp(resolved.value, proxyPort);
    if (!tcp.ok) {
      report.line(
        'FAIL',
        'proxy TCP',
        `cannot connect to ${where}: ${tcp.error}`,
        'check the proxy URL and that the proxy runs',
      );
      return false;
    }
    report.line('OK', 'proxy TCP', `connected to ${where}`);
    const tunnel = await probeConnectTunnel(proxy, host, port);
    if (!tunnel.ok) {
      report.line(
        'FAIL',
        'control plane via proxy',
        `CONNECT ${host}:${port} through ${where} failed: ${tunnel.error}`,
        'ask the proxy administrators to allow CONNECT to this host and port',
      );
      return false;
    }
    report.line('OK', 'control plane via proxy', `tunnel to ${host}:${port} through ${where}`);
    if (!secure) {
      tunnel.value.destroy();
      report.line('SKIP', 'control plane TLS', 'the control plane URL is plain http://');
      return true;
    }
    const t = await probeTls({ address: host, port, host, socket: tunnel.value, ca: options.ca });
    if (!t.ok) {
      report.line('FAIL', 'control plane TLS', `TLS through the proxy failed: ${t.error}`, tlsFix);
      return false;
    }
    report.line('OK', 'control plane TLS', `certificate for ${t.value.subject} verified`);
    return true;
  }

  const resolved = await probeDns(host);
  if (!resolved.ok) {
    report.line(
      'FAIL',
      'control plane DNS',
      `cannot resolve ${host}: ${resolved.error}`,
      'check the DNS servers of this machine, or the URL given at enrollment',
    );
    return false;
  }
  report.line('OK', 'control plane DNS', dnsDetail(host, resolved.value));
  const where = `${resolved.value}:${port}`;
  const tcp = await probeTcp(resolved.value, port);
  if (!tcp.ok) {
    report.line(
      'FAIL',
      'control plane TCP',
      `cannot connect to ${where}: ${tcp.error}`,
      `check that the control plane runs and that firewalls allow outbound TCP to ${where}`,
    );
    return false;
  }
  report.line('OK', 'control plane TCP', `connected to ${where}`);
  if (!secure) {
    report.line('SKIP', 'control plane TLS', 'the control plane URL is plain http://');
    return true;
  }
  const t = await probeTls({ address: resolved.value, port, host, ca: options.ca });
  if (!t.ok) {
    report.line('FAIL', 'control plane TLS', `TLS failed: ${t.error}`, tlsFix);
    return false;
  }
  report.line('OK', 'control plane TLS', `certificate for ${t.value.subject} verified`);
  return true;
}

/** GET /v1/health, and the clock skew measured against its Date header. */
async function checkHealthAndClock(report: Report, base: string, options: DoctorOptions) {
  const proxy = proxyFor(new URL(base), options.proxyFlag);
  const dispatcher = proxy
    ? new ProxyAgent({ uri: proxy.toString(), requestTls: { ca: options.ca } })
    : new UndiciAgent({ connect: { ca: options.ca, timeout: PROBE_TIMEOUT_MS } });
  try {
    const sent = Date.now();
    const res = await request(`${base}/v1/health`, {
      dispatcher,
      headersTimeout: PROBE_TIMEOUT_MS,
      bodyTimeout: PROBE_TIMEOUT_MS,
    });
    const received = Date.now();
    await res.body.dump();
    report.line(
      res.statusCode === 200 ? 'OK' : 'FAIL',
      'control plane HTTP',
      `GET /v1/health answered ${res.statusCode}`,
      'check the URL given at enrollment (and the proxy, if one is set)',
    );
    const date = res.headers.date;
    const serverTime = typeof date === 'string' ? Date.parse(date) : NaN;
    if (Number.isNaN(serverTime)) {
      report.line(
        'WARN',
        'clock skew',
        'the control plane sent no Date header',
        'check the clock against an NTP server by hand',
      );
      return;
    }
    // The Date header has whole seconds: the server's clock was somewhere in that second, so
    // its middle is the best guess; the request's midpoint is our time for the same moment.
    const skew = Math.round(((sent + received) / 2 - (serverTime + 500)) / 1000);
    const size = Math.abs(skew);
    const verdict = size > MAX_CLOCK_SKEW_S ? 'FAIL' : size > WARN_CLOCK_SKEW_S ? 'WARN' : 'OK';
    const direction = skew > 0 ? 'ahead of' : 'behind';
    report.line(
      verdict,
      'clock skew',
      size === 0 ? 'in step with the control plane' : `${size} s ${direction} the control plane`,
      `sync this machine's clock (NTP): connection tokens are refused beyond ${MAX_CLOCK_SKEW_S} s`,
    );
  } catch (err) {
    report.line(
      'FAIL',
      'control plane HTTP',
      `GET /v1/health failed: ${(err as Error).message}`,
      'check the URL, proxy and CA settings',
    );
    report.line('SKIP', 'clock skew', 'needs an answer from the control plane');
  } finally {
    await dispatcher.close();
  }
}

/** Whether the agent process runs; the doctor may well be run while it does not. */
function checkAgentProcess(report: Report, store: AgentStore): void {
  const s = store.status();
  const running =
    !s.stoppedAt && agentProcessAlive(s.pid ? Number(s.pid) : null, s.startedAt ?? null);
  if (!running) {
    report.line(
      'WARN',
      'agent process',
      'not running',
      'systemctl start outpost-agent (or terminal-agent run)',
    );
  } else if (s.connected === '1') {
    report.line('OK', 'agent process', `running (pid ${s.pid}), connected`);
  } else {
    report.line(
      'WARN',
      'agent process',
      `running (pid ${s.pid}), not connected: ${s.lastError ?? 'no error recorded'}`,
      'see the checks above and the agent log',
    );
  }
}

/** DNS, TCP and TLS to the host of every held account, with the account's own trust settings. */
async function checkAccounts(report: Report, store: AgentStore): Promise<void> {
  const identity = store.identity();
  if (!identity) return;
  const registry = new AccountRegistry(store, identity, createLogger({ level: 'error' }));
  const held = store.accounts();
  if (held.length === 0) {
    report.line('SKIP', 'accounts', 'this terminal holds no account yet');
    return;
  }
  for (const { descriptor } of held) {
    const label = `account ${JSON.stringify(descriptor.name.slice(0, 12))}`;
    let account: ResolvedAccount | undefined;
    try {
      account = registry.resolve(descriptor.id);
    } catch (err) {
      report.line(
        'FAIL',
        `${label} secrets`,
        (err as Error).message,
        'set the secrets again from the control plane or with terminal-agent accounts set-secret',
      );
    }
    if (!account) continue;
    await checkAccountHost(report, label, account);
  }
}

async function checkAccountHost(report: Report, label: string, account: ResolvedAccount) {
  let base: AccountBase;
  try {
    base = parseAccountBase(account.host, account.port);
  } catch (err) {
    report.line(
      'FAIL',
      `${label} host`,
      (err as Error).message,
      'fix the account host on the control plane',
    );
    return;
  }
  const host = base.hostname.replace(/^\[|\]$/g, '');
  const port = Number(base.port);
  const resolved = await probeDns(host);
  if (!resolved.ok) {
    report.line(
      'FAIL',
      `${label} DNS`,
      `cannot resolve ${host}: ${resolved.error}`,
      'check the host name and the DNS servers of this machine',
    );
    return;
  }
  report.line('OK', `${label} DNS`, dnsDetail(host, resolved.value));
  const where = `${resolved.value}:${port}`;
  const tcp = await probeTcp(resolved.value, port);
  if (!tcp.ok) {
    report.line(
      'FAIL',
      `${label} TCP`,
      `cannot connect to ${where}: ${tcp.error}`,
      `check that the service listens on ${where} and that no firewall blocks this machine`,
    );
    return;
  }
  report.line('OK', `${label} TCP`, `connected to ${where}`);
  if (base.protocol !== 'https:') {
    report.line('SKIP', `${label} TLS`, 'the account host is plain http://');
    return;
  }
  const material = tlsMaterial(account);
  const t = await probeTls({ address: resolved.value, port, host, ...material });
  if (!t.ok) {
    report.line(
      'FAIL',
      `${label} TLS`,
      `TLS failed: ${t.error}`,
      "give the account the CA that signed the server's certificate (settings.caPem), or check the host name",
    );
    return;
  }
  const expiry = `certificate for ${t.value.subject} valid for ${t.value.daysLeft} more days`;
  if (t.value.daysLeft < 30) {
    report.line('WARN', `${label} TLS`, expiry, "ask the API's owners to renew its certificate");
  } else report.line('OK', `${label} TLS`, expiry);
}

/** The account's trusted CAs and client certificate, as its jobs use them. */
function tlsMaterial(account: ResolvedAccount) {
  const own = authHandler(account.authType).tls?.(account) ?? {};
  const ca = account.settings.caPem !== undefined ? parseCaBundle(account.settings.caPem) : own.ca;
  return { ...own, ca };
}

function dnsDetail(host: string, address: string): string {
  return net.isIP(host)
    ? `${host} is an address: nothing to look up`
    : `${host} resolves to ${address}`;
}

/**
 * The data folder and the local key must be private to the agent's user: the key decrypts every
 * stored secret. Windows folders are restricted by the installer's ACL instead.
 */
function checkPermissions(dataDir: string): { verdict: Verdict; detail: string; fix?: string } {
  if (process.platform === 'win32')
    return { verdict: 'SKIP', detail: 'the installer restricts it to SYSTEM and Administrators' };
  const keyFile = localKeyPath(dataDir);
  try {
    const loose: string[] = [];
    const dir = statSync(dataDir);
    if ((dir.mode & 0o077) !== 0) loose.push(`${dataDir} is mode ${octal(dir.mode)}`);
    try {
      const key = statSync(keyFile);
      if ((key.mode & 0o077) !== 0) loose.push(`${keyFile} is mode ${octal(key.mode)}`);
    } catch {
      // No key yet: it is made (mode 0600) with the first secret stored.
    }
    if (loose.length > 0) {
      return {
        verdict: 'FAIL',
        detail: `others can read it: ${loose.join(', ')}`,
        fix: `chmod 700 ${dataDir} && chmod 600 ${keyFile}`,
      };
    }
    return {
      verdict: 'OK',
      detail: `${dataDir} is private to its owner (mode ${octal(dir.mode)})`,
    };
  } catch (err) {
    return {
      verdict: 'FAIL',
      detail: (err as Error).message,
      fix: `check that ${dataDir} exists and this user can read it`,
    };
  }
}

function octal(mode: number): string {
  return (mode & 0o777).toString(8).padStart(4, '0');
}
