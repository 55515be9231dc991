/**
 * `terminal-agent status`: what the local agent is doing, read from its store, whether or not
 * the agent runs. `connected` is true only while a live agent process holds a session now.
 */
import { certificateExpiries } from '../shared/auth/certificate-expiry.js';
import { PRODUCT_VERSION } from '../shared/version.js';
import type { AgentStore } from './agent-store.js';

/** The `status --json` object of API.md, plus a few fields for operators. */
export interface StatusReport {
  enrolled: boolean;
  terminalId: string | null;
  name: string | null;
  controlPlaneUrl: string | null;
  connected: boolean;
  connectedSince: string | null;
  lastHeartbeatAt: string | null;
  version: string;
  running: boolean;
  pid: number | null;
  uptimeSeconds: number | null;
  dataDir: string;
  jobs: {
    running: number;
    succeeded: number;
    failed: number;
    succeededLastHour: number;
    failedLastHour: number;
  };
  lastError: string | null;
  lastErrorAt: string | null;
  accounts: Array<{
    id: string;
    name: string;
    authType: string;
    host: string;
    secretFields: string[];
    warnings: string[];
    certificatesExpiringSoon: Array<{ field: string; notAfter: string }>;
  }>;
}

function alive(pid: number | null): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Builds the status report. */
export function statusReport(store: AgentStore): StatusReport {
  const summary = store.identitySummary();
  const s = store.status();
  const pid = s.pid ? Number(s.pid) : null;
  const running = s.stoppedAt === null || s.stoppedAt === undefined ? alive(pid) : false;
  const connected = running && s.connected === '1';
  const all = store.jobCounts('1970-01-01T00:00:00.000Z');
  const hour = store.jobCounts(new Date(Date.now() - 3600_000).toISOString());
  const runningJobs = running ? store.unackedJobs().filter((j) => j.state === 'running').length : 0;
  const soon = Date.now() + 30 * 86_400_000;
  return {
    enrolled: summary !== undefined,
    terminalId: summary?.terminalId ?? null,
    name: summary?.name ?? null,
    controlPlaneUrl: summary?.controlPlaneUrl ?? null,
    connected,
    connectedSince: connected ? (s.connectedSince ?? null) : null,
    lastHeartbeatAt: s.lastHeartbeatAt ?? null,
    version: PRODUCT_VERSION,
    running,
    pid: running ? pid : null,
    uptimeSeconds:
      running && s.startedAt ? Math.round((Date.now() - Date.parse(s.startedAt)) / 1000) : null,
    dataDir: store.dataDir,
    jobs: {
      running: runningJobs,
      succeeded: all.succeeded,
      failed: all.failed,
      succeededLastHour: hour.succeeded,
      failedLastHour: hour.failed,
    },
    lastError: s.lastError ?? null,
    lastErrorAt: s.lastErrorAt ?? null,
    accounts: summary
      ? store.accounts().map((a) => {
          const d = a.descriptor;
          let secrets = {};
          try {
            secrets = store.accountSecrets(d.id);
          } catch {
            // Unreadable secrets show as none set.
          }
          const expiring = certificateExpiries(d.authType, d.settings, secrets)
            .filter((c) => Date.parse(String(c.notAfter)) < soon)
            .map((c) => ({ field: c.field, notAfter: new Date(c.notAfter).toISOString() }));
          return {
            id: d.id,
            name: d.name,
            authType: d.authType,
            host: d.host,
            secretFields: Object.keys(secrets).sort(),
            warnings: a.warnings,
            certificatesExpiringSoon: expiring,
          };
        })
      : [],
  };
}

function ago(iso: string | null): string {
  if (!iso) return '-';
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  return `${iso} (${s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`} ago)`;
}

/** The status as a table for people. */
export function formatStatus(r: StatusReport): string {
  if (!r.enrolled) {
    return `Outpost terminal agent ${r.version}\nNot enrolled (data dir ${r.dataDir}).\nEnroll with: terminal-agent enroll --url URL --token TOKEN\n`;
  }
  const rows: Array<[string, string]> = [
    ['Version', r.version],
    ['Terminal', `${r.name ?? ''} (${r.terminalId})`],
    ['Control plane', r.controlPlaneUrl ?? '-'],
    [
      'Agent process',
      r.running ? `running (pid ${r.pid}, up ${r.uptimeSeconds} s)` : 'not running',
    ],
    ['Connected', r.connected ? `yes, since ${ago(r.connectedSince)}` : 'no'],
    ['Last heartbeat', ago(r.lastHeartbeatAt)],
    ['Jobs running', String(r.jobs.running)],
    ['Jobs last hour', `${r.jobs.succeededLastHour} succeeded, ${r.jobs.failedLastHour} failed`],
    ['Jobs in all', `${r.jobs.succeeded} succeeded, ${r.jobs.failed} failed`],
    ['Last error', r.lastError ? `${r.lastError} (${r.lastErrorAt})` : '-'],
    ['Data dir', r.dataDir],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  let out = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n') + '\n';
  out += `\nAccounts (${r.accounts.length}):\n`;
  for (const a of r.accounts) {
    out += `  ${a.name} [${a.authType}] ${a.host}  secrets: ${a.secretFields.join(', ') || 'none set'}\n`;
    for (const c of a.certificatesExpiringSoon)
      out += `    ! certificate ${c.field} expires ${c.notAfter}\n`;
    for (const w of a.warnings) out += `    ! ${w}\n`;
  }
  return out;
}
