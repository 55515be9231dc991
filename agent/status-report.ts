/**
 * `terminal-agent status`: what the local agent is doing, read from its store, whether or not
 * the agent runs. `connected` is true only while a live agent process holds a session now: the
 * store keeps the last state the agent wrote, and an agent killed with SIGKILL never writes
 * "disconnected", so the recorded process must also still be alive (see ./agent-process.ts).
 */
import { certificateExpiries } from '../shared/auth/certificate-expiry.js';
import { escapeControlCharacters as show } from '../shared/display-text.js';
import { PRODUCT_VERSION } from '../shared/version.js';
import { agentProcessAlive } from './agent-process.js';
import type { AgentStore } from './agent-store.js';

/** Certificates that expire within this many days are listed. */
export const EXPIRY_WARNING_DAYS = 30;

/** One certificate of a held account that expires soon (or has expired). */
export interface ExpiringCertificate {
  field: string;
  subject: string;
  notAfter: string;
}

/** The `status --json` object of API.md, plus fields for operators. */
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
  startedAt: string | null;
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
    certificatesExpiringSoon: ExpiringCertificate[];
  }>;
}

/** Builds the status report; `now` is a parameter so that reports are reproducible. */
export function statusReport(store: AgentStore, now = Date.now()): StatusReport {
  const summary = store.identitySummary();
  const s = store.status();
  const pid = s.pid ? Number(s.pid) : null;
  const startedAt = s.startedAt ?? null;
  // A clean stop writes stoppedAt; after a crash only the process check can tell.
  const running = !s.stoppedAt && agentProcessAlive(pid, startedAt);
  const connected = running && s.connected === '1';
  const all = store.journal.counts('1970-01-01T00:00:00.000Z');
  const hour = store.journal.counts(new Date(now - 3600_000).toISOString());
  const runningJobs = running
    ? store.journal.unacked().filter((j) => j.state === 'running').length
    : 0;
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
    startedAt: running ? startedAt : null,
    uptimeSeconds:
      running && startedAt ? Math.max(0, Math.round((now - Date.parse(startedAt)) / 1000)) : null,
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
    accounts: summary ? accountLines(store, now) : [],
  };
}

function accountLines(store: AgentStore, now: number): StatusReport['accounts'] {
  const soon = now + EXPIRY_WARNING_DAYS * 86_400_000;
  return store.accounts().map((a) => {
    const d = a.descriptor;
    let secrets = {};
    try {
      secrets = store.accountSecrets(d.id);
    } catch {
      // Secrets that cannot be decrypted show as none set; the account's warnings say why.
    }
    const expiring = certificateExpiries(d.authType, d.settings, secrets)
      .filter((c) => Date.parse(c.notAfter) < soon)
      .map((c) => ({ field: c.field, subject: c.subject, notAfter: c.notAfter }));
    return {
      id: d.id,
      name: d.name,
      authType: d.authType,
      host: d.host,
      secretFields: Object.keys(secrets).sort(),
      warnings: a.warnings,
      certificatesExpiringSoon: expiring,
    };
  });
}

/** "3 min" for a number of seconds, in the largest unit that keeps it readable. */
export function humanDuration(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} days`;
}

function at(iso: string | null, now: number): string {
  if (!iso) return '-';
  return `${iso} (${humanDuration(Math.max(0, Math.round((now - Date.parse(iso)) / 1000)))} ago)`;
}

/** The status as a table for people. */
export function formatStatus(r: StatusReport, now = Date.now()): string {
  if (!r.enrolled) {
    return (
      `Outpost terminal agent ${r.version}\n` +
      `Not enrolled (data dir ${r.dataDir}).\n` +
      'Enroll with: terminal-agent enroll --url URL --token TOKEN' +
      ' (or the token in OUTPOST_ENROLLMENT_TOKEN)\n'
    );
  }
  const process = r.running
    ? `running (pid ${r.pid})`
    : 'not running (start it: systemctl start outpost-agent, or terminal-agent run)';
  const rows: Array<[string, string]> = [
    ['Version', r.version],
    ['Terminal', `${r.name ?? ''} (${r.terminalId})`],
    ['Control plane', r.controlPlaneUrl ?? '-'],
    ['Agent process', process],
    ['Uptime', r.uptimeSeconds === null ? '-' : humanDuration(r.uptimeSeconds)],
    ['Connected', r.connected ? 'yes' : 'no'],
    ['Connected since', at(r.connectedSince, now)],
    ['Last heartbeat', at(r.lastHeartbeatAt, now)],
    ['Jobs running', String(r.jobs.running)],
    ['Last hour', `${r.jobs.succeededLastHour} done, ${r.jobs.failedLastHour} failed`],
    ['Since enrollment', `${r.jobs.succeeded} done, ${r.jobs.failed} failed`],
    ['Last error', r.lastError ? `${r.lastError} (${r.lastErrorAt ?? 'time unknown'})` : '-'],
    ['Data dir', r.dataDir],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  // Names, hosts and errors came from the control plane or a target: escape control characters.
  let out = rows.map(([k, v]) => `${k.padEnd(width)}  ${show(v)}`).join('\n') + '\n';

  const expiring = r.accounts.flatMap((a) =>
    a.certificatesExpiringSoon.map((c) =>
      show(`  ${a.name}: ${c.field} (${c.subject}) ${c.notAfter}`),
    ),
  );
  out += `\nCertificates expiring within ${EXPIRY_WARNING_DAYS} days: `;
  out += expiring.length === 0 ? 'none\n' : `${expiring.length}\n${expiring.join('\n')}\n`;

  out += `\nAccounts (${r.accounts.length}):\n`;
  for (const a of r.accounts) {
    out += `  ${show(`${a.name} [${a.authType}] ${a.host}  secrets: ${a.secretFields.join(', ') || 'none set'}`)}\n`;
    for (const w of a.warnings) out += `    ! ${show(w)}\n`;
  }
  return out;
}
