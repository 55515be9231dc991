/**
 * `terminal-agent doctor` with real processes: a control plane, the built agent, a plain HTTP and
 * an HTTPS API on loopback, in the never-enrolled, connected and disconnected cases.
 */
import { execFile } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  agentCommand,
  cleanup,
  createAndEnroll,
  ROOT,
  startAgent,
  startControlPlane,
  tempDir,
  waitFor,
  type AgentProc,
  type ControlPlaneProc,
} from '../helpers/processes.js';
import { chainPem, createPki, startTlsServer, type TlsTestServer } from '../helpers/pki.js';

const execFileAsync = promisify(execFile);
const AGENT_CLI = join(ROOT, 'dist', 'agent', 'cli.js');

/** One check line: its verdict, its name, its detail, and the fix line under it, if any. */
interface Check {
  verdict: string;
  name: string;
  detail: string;
  fix?: string;
}

/**
 * Runs `terminal-agent doctor` without blocking this process: the HTTPS API it probes is served
 * from here, and a synchronous spawn would stall its handshake.
 */
async function doctor(dataDir: string): Promise<{ code: number; checks: Check[] }> {
  let code = 0;
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync(process.execPath, [
      AGENT_CLI,
      'doctor',
      '--data-dir',
      dataDir,
    ]));
  } catch (err) {
    const failed = err as { code: number; stdout: string; stderr: string };
    code = failed.code;
    stdout = failed.stdout + failed.stderr;
  }
  const checks: Check[] = [];
  for (const line of stdout.split('\n').filter(Boolean)) {
    if (line.startsWith('      fix: ')) checks.at(-1)!.fix = line.slice(11);
    else
      checks.push({
        verdict: line.slice(0, 4).trim(),
        name: line.slice(6, 32).trim(),
        detail: line.slice(33),
      });
  }
  return { code, checks };
}

function verdicts(checks: Check[]): string[] {
  return checks.map((c) => `${c.verdict} ${c.name}`);
}

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('doctor on a data dir that was never enrolled', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = tempDir('doctor-fresh');
  });
  afterAll(() => cleanup(dataDir));

  it('fails the enrollment check with the command to run, and exits 1', async () => {
    const d = await doctor(dataDir);

    expect(d.code).toBe(1);
    expect(d.checks).toEqual([
      {
        verdict: 'OK',
        name: 'data folder',
        detail: `${dataDir} is private to its owner (mode 0700)`,
      },
      {
        verdict: 'FAIL',
        name: 'enrollment',
        detail: `the data dir ${dataDir} is not enrolled`,
        fix: 'terminal-agent enroll --url URL --token TOKEN (or the token in OUTPOST_ENROLLMENT_TOKEN)',
      },
    ]);
  });
});

describe('doctor on an enrolled terminal', () => {
  let cp: ControlPlaneProc;
  let agent: AgentProc;
  let terminalId: string;
  let dataDir: string;
  let plain: Server;
  let plainPort: number;
  let secure: TlsTestServer;
  const pki = createPki('Doctor');

  async function bindAccount(body: Record<string, unknown>): Promise<void> {
    const created = await cp.api.call('POST', '/v1/accounts', { ...body, terminalId });
    expect(created.status).toBe(201);
    await waitFor('the agent to hold the account', () => {
      const s = JSON.parse(agentCommand(['status', '--json', '--data-dir', dataDir]).stdout);
      return s.accounts.some((a: { id: string }) => a.id === created.body.id) ? true : undefined;
    });
  }

  beforeAll(async () => {
    plain = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    plainPort = (plain.address() as AddressInfo).port;
    secure = await startTlsServer({
      certPem: chainPem(pki.server, pki.intermediate),
      keyPem: pki.server.keyPem,
    });
    cp = await startControlPlane();
    ({ terminalId, dataDir } = await createAndEnroll(cp, 'doctor-site'));
    agent = await startAgent(cp, terminalId, dataDir);
    await bindAccount({
      name: 'plain api',
      authType: 'basic',
      host: `http://127.0.0.1:${plainPort}`,
      secrets: { username: 'u', password: 'doctor-pass' },
    });
    await bindAccount({
      name: 'tls api',
      authType: 'ca-certificate',
      host: secure.url,
      settings: { caPem: pki.root.certPem },
    });
  });

  afterAll(async () => {
    await agent?.stop();
    await cp?.stop();
    plain?.close();
    await secure?.close();
    cleanup(...[dataDir, cp?.dataDir].filter((d) => d !== undefined));
  });

  it('while connected: every check passes or does not apply, and it exits 0', async () => {
    const d = await doctor(dataDir);
    const cpPort = new URL(cp.url).port;

    expect(verdicts(d.checks)).toEqual([
      'OK data folder',
      'OK enrollment',
      'OK control plane DNS',
      'OK control plane TCP',
      'SKIP control plane TLS',
      'OK control plane HTTP',
      'OK clock skew',
      'OK agent process',
      'OK account "plain api" DNS',
      'OK account "plain api" TCP',
      'SKIP account "plain api" TLS',
      'OK account "tls api" DNS',
      'OK account "tls api" TCP',
      'OK account "tls api" TLS',
    ]);
    expect(d.code).toBe(0);
    const detail = (name: string) => d.checks.find((c) => c.name === name)?.detail;
    expect(detail('control plane TCP')).toBe(`connected to 127.0.0.1:${cpPort}`);
    expect(detail('control plane HTTP')).toBe('GET /v1/health answered 200');
    expect(detail('clock skew')).toMatch(
      /^(in step with|1 s (ahead of|behind)) the control plane$/,
    );
    expect(detail('agent process')).toBe(`running (pid ${agent.child.pid}), connected`);
    expect(detail('account "tls api" TLS')).toBe(
      'certificate for Doctor Server valid for 364 more days',
    );
  });

  it('fails the data folder check with the chmod that fixes it when others can read it', async () => {
    chmodSync(dataDir, 0o755);
    try {
      const d = await doctor(dataDir);

      expect(d.code).toBe(1);
      expect(d.checks[0]).toEqual({
        verdict: 'FAIL',
        name: 'data folder',
        detail: `others can read it: ${dataDir} is mode 0755`,
        fix: `chmod 700 ${dataDir} && chmod 600 ${join(dataDir, 'local.key')}`,
      });
    } finally {
      chmodSync(dataDir, 0o700);
    }
  });

  it('fails the TCP check of an account whose host refuses connections, with a fix', async () => {
    const port = await closedPort();
    await bindAccount({ name: 'gone api', authType: 'none', host: `http://127.0.0.1:${port}` });

    const d = await doctor(dataDir);

    expect(d.code).toBe(1);
    expect(d.checks.filter((c) => c.name.startsWith('account "gone api"'))).toEqual([
      {
        verdict: 'OK',
        name: 'account "gone api" DNS',
        detail: '127.0.0.1 is an address: nothing to look up',
      },
      {
        verdict: 'FAIL',
        name: 'account "gone api" TCP',
        detail: `cannot connect to 127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`,
        fix: `check that the service listens on 127.0.0.1:${port} and that no firewall blocks this machine`,
      },
    ]);
  });

  it('with the control plane down: TCP fails with a fix, the checks that need it are skipped', async () => {
    const where = new URL(cp.url).host;
    await cp.stop();

    const d = await doctor(dataDir);

    expect(d.code).toBe(1);
    expect(d.checks.slice(2, 6)).toEqual([
      {
        verdict: 'OK',
        name: 'control plane DNS',
        detail: '127.0.0.1 is an address: nothing to look up',
      },
      {
        verdict: 'FAIL',
        name: 'control plane TCP',
        detail: `cannot connect to ${where}: connect ECONNREFUSED ${where}`,
        fix: `check that the control plane runs and that firewalls allow outbound TCP to ${where}`,
      },
      {
        verdict: 'SKIP',
        name: 'control plane HTTP',
        detail: 'needs a connection to the control plane',
      },
      { verdict: 'SKIP', name: 'clock skew', detail: 'needs a connection to the control plane' },
    ]);
    expect(d.checks.find((c) => c.name === 'account "plain api" TCP')?.verdict).toBe('OK');
  });
});
