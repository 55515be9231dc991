/**
 * `terminal-agent status` with real processes: a control plane and the built agent on loopback,
 * in the never-enrolled, connected and disconnected cases, and after the agent is killed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  agentCommand,
  cleanup,
  createAndEnroll,
  startAgent,
  startControlPlane,
  tempDir,
  waitFor,
  type AgentProc,
  type ControlPlaneProc,
} from '../helpers/processes.js';
import { issueCertificate } from '../helpers/pki.js';

const DAY_MS = 86_400_000;

function status(dataDir: string) {
  const r = agentCommand(['status', '--json', '--data-dir', dataDir]);
  return { code: r.code, report: JSON.parse(r.stdout) as Record<string, any>, stderr: r.stderr };
}

describe('status of a data dir that was never enrolled', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = tempDir('status-fresh');
  });
  afterAll(() => cleanup(dataDir));

  it('exits 2 and says how to enroll', () => {
    const r = agentCommand(['status', '--data-dir', dataDir]);

    expect(r.code).toBe(2);
    expect(r.stdout).toBe(
      'Outpost terminal agent 0.1.0\n' +
        `Not enrolled (data dir ${dataDir}).\n` +
        'Enroll with: terminal-agent enroll --url URL --token TOKEN' +
        ' (or the token in OUTPOST_ENROLLMENT_TOKEN)\n',
    );
  });

  it('says enrolled false and connected false in JSON', () => {
    const s = status(dataDir);

    expect(s.code).toBe(2);
    expect(s.report).toMatchObject({
      enrolled: false,
      terminalId: null,
      connected: false,
      running: false,
      accounts: [],
    });
  });
});

describe('status of an enrolled terminal', () => {
  let cp: ControlPlaneProc;
  let agent: AgentProc;
  let terminalId: string;
  let dataDir: string;
  let before: number;
  const shortCa = issueCertificate({
    commonName: 'Short-lived CA',
    ca: true,
    notAfter: new Date(Date.now() + 10 * DAY_MS),
  });

  beforeAll(async () => {
    cp = await startControlPlane();
    ({ terminalId, dataDir } = await createAndEnroll(cp, 'status-site'));
    before = Date.now();
    agent = await startAgent(cp, terminalId, dataDir);
    const account = await cp.api.call('POST', '/v1/accounts', {
      name: 'internal ca api',
      authType: 'ca-certificate',
      host: 'https://127.0.0.1:9',
      terminalId,
      settings: { caPem: shortCa.certPem },
    });
    expect(account.status).toBe(201);
    await waitFor('the agent to hold the account', () =>
      status(dataDir).report.accounts.length === 1 ? true : undefined,
    );
  });

  afterAll(async () => {
    await agent?.stop();
    await cp?.stop();
    cleanup(...[dataDir, cp?.dataDir].filter((d) => d !== undefined));
  });

  it('while connected: exit 0, connected since a time, a heartbeat after the agent started', () => {
    const s = status(dataDir);

    expect(s.code).toBe(0);
    expect(s.report).toMatchObject({
      enrolled: true,
      terminalId,
      name: 'status-site',
      controlPlaneUrl: cp.url,
      connected: true,
      running: true,
      pid: agent.child.pid,
      version: '0.1.0',
      lastError: null,
      jobs: { running: 0, succeeded: 0, failed: 0, succeededLastHour: 0, failedLastHour: 0 },
    });
    expect(Date.parse(s.report.connectedSince)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(s.report.lastHeartbeatAt)).toBeGreaterThanOrEqual(before);
    expect(s.report.uptimeSeconds).toBeGreaterThanOrEqual(0);
  });

  it('lists the account whose CA certificate expires within 30 days', () => {
    const s = status(dataDir);

    expect(s.report.accounts).toEqual([
      expect.objectContaining({
        name: 'internal ca api',
        authType: 'ca-certificate',
        certificatesExpiringSoon: [
          {
            field: 'settings.caPem',
            subject: 'Short-lived CA',
            notAfter: new Date(Math.floor(shortCa.notAfter.getTime() / 1000) * 1000).toISOString(),
          },
        ],
      }),
    ]);
  });

  it('prints a table with the connection, the jobs and the expiring certificate', () => {
    const r = agentCommand(['status', '--data-dir', dataDir]);
    const lines = r.stdout.split('\n');

    expect(r.code).toBe(0);
    expect(lines).toEqual(
      expect.arrayContaining([
        'Version           0.1.0',
        `Terminal          status-site (${terminalId})`,
        `Control plane     ${cp.url}`,
        `Agent process     running (pid ${agent.child.pid})`,
        'Connected         yes',
        'Jobs running      0',
        'Last hour         0 done, 0 failed',
        'Last error        -',
        'Certificates expiring within 30 days: 1',
      ]),
    );
    expect(lines.find((l) => l.startsWith('Connected since'))).toMatch(
      /^Connected since {3}\d{4}-\d\d-\d\dT.* \(\d+ s ago\)$/,
    );
    expect(lines).toContain(
      `  internal ca api: settings.caPem (Short-lived CA) ${new Date(
        Math.floor(shortCa.notAfter.getTime() / 1000) * 1000,
      ).toISOString()}`,
    );
  });

  it('after kill -9 of the agent: not running, not connected, exit 1', async () => {
    agent.child.kill('SIGKILL');
    await agent.exited;

    const s = status(dataDir);

    expect(s.code).toBe(1);
    expect(s.report).toMatchObject({ running: false, connected: false, connectedSince: null });
  });

  it('with the control plane stopped: exit 1, connected false, the refused connection as the last error', async () => {
    agent = await startAgent(cp, terminalId, dataDir);
    await cp.stop();

    const s = await waitFor('the agent to record the refused connection', () => {
      const now = status(dataDir);
      return /ECONNREFUSED/.test(String(now.report.lastError)) ? now : undefined;
    });

    expect(s.code).toBe(1);
    expect(s.report).toMatchObject({ running: true, connected: false, connectedSince: null });
    expect(s.report.lastError).toMatch(
      new RegExp(`^cannot reach the control plane: connect ECONNREFUSED ${cp.url.slice(7)}$`),
    );
  });

  it('with the agent stopped: exit 1, and the table says how to start it', async () => {
    await agent.stop();

    const s = status(dataDir);
    const table = agentCommand(['status', '--data-dir', dataDir]);

    expect(s.code).toBe(1);
    expect(s.report).toMatchObject({ running: false, connected: false, pid: null });
    expect(table.code).toBe(1);
    expect(table.stdout).toContain(
      'Agent process     not running (start it: systemctl start outpost-agent, or terminal-agent run)\n',
    );
  });
});
