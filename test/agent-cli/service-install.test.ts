/**
 * `terminal-agent service install | status | uninstall --destdir` end to end with the built CLI
 * (node dist/agent/cli.js): the real installers/linux scripts stage a service under a temporary
 * root, enroll the staged executable against a real control plane, and remove it again. Nothing
 * outside the temporary root is touched: systemctl and user steps are only printed.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  agentCommand,
  cleanup,
  ROOT,
  startControlPlane,
  type ControlPlaneProc,
} from '../helpers/processes.js';

describe('terminal-agent service with --destdir', () => {
  let cp: ControlPlaneProc;
  let work: string;
  let destdir: string;
  let launcher: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'outpost-service-e2e-'));
    destdir = join(work, 'root');
    // The executable to install: the built CLI behind a launcher, as the container image has it.
    launcher = join(work, 'terminal-agent');
    writeFileSync(
      launcher,
      `#!/bin/sh\nexec "${process.execPath}" "${join(ROOT, 'dist', 'agent', 'cli.js')}" "$@"\n`,
    );
    chmodSync(launcher, 0o755);
    cp = await startControlPlane();
  });

  afterAll(async () => {
    await cp?.stop();
    cleanup(...[work, cp?.dataDir].filter((d) => d !== undefined));
  });

  it('says "not installed" (exit 2) before anything is installed', () => {
    const r = agentCommand(['service', 'status', '--destdir', destdir, '--json']);

    expect(r.stdout).toBe('{"installed":false,"state":"not installed"}\n');
    expect(r.code).toBe(2);
  });

  it('installs the unit and the executable, and enrolls the staged data dir', async () => {
    const terminal = await cp.api.call('POST', '/v1/terminals', { name: 'staged-site' });

    const r = agentCommand(
      ['service', 'install', '--binary', launcher, '--destdir', destdir, '--url', cp.url],
      { OUTPOST_ENROLLMENT_TOKEN: terminal.body.enrollmentToken },
    );

    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const unit = readFileSync(join(destdir, 'etc/systemd/system/outpost-agent.service'), 'utf8');
    expect(unit).toMatch(/^ExecStart=\/usr\/local\/bin\/terminal-agent run$/m);
    expect(readFileSync(join(destdir, 'usr/local/bin/terminal-agent'), 'utf8')).toBe(
      readFileSync(launcher, 'utf8'),
    );
    expect(r.stdout).toContain(`Enrolled as terminal ${terminal.body.id} (staged-site).`);
    expect(r.stdout).toContain('would run: systemctl enable --now outpost-agent');
    expect(r.stdout).not.toContain(terminal.body.enrollmentToken);

    const status = agentCommand(['service', 'status', '--destdir', destdir, '--json']);
    expect(status.stdout).toBe('{"installed":true,"state":"staged"}\n');
    const agentStatus = agentCommand([
      'status',
      '--json',
      '--data-dir',
      join(destdir, 'var/lib/outpost-agent'),
    ]);
    expect(agentStatus.code).toBe(1);
    expect(JSON.parse(agentStatus.stdout)).toMatchObject({
      enrolled: true,
      terminalId: terminal.body.id,
      controlPlaneUrl: cp.url,
      connected: false,
    });
  });

  it('uninstalls the unit and the executable, keeps the data dir, then says "not installed"', () => {
    const r = agentCommand(['service', 'uninstall', '--destdir', destdir]);
    const status = agentCommand(['service', 'status', '--destdir', destdir]);

    expect(r.code).toBe(0);
    expect(existsSync(join(destdir, 'etc/systemd/system/outpost-agent.service'))).toBe(false);
    expect(existsSync(join(destdir, 'usr/local/bin/terminal-agent'))).toBe(false);
    expect(existsSync(join(destdir, 'var/lib/outpost-agent/local.key'))).toBe(true);
    expect(status.stdout).toBe('not installed\n');
    expect(status.code).toBe(2);
  });

  it('uninstall --purge removes the data dir as well', () => {
    const r = agentCommand(['service', 'uninstall', '--purge', '--destdir', destdir]);

    expect(r.code).toBe(0);
    expect(r.stdout).toContain('would run: userdel outpost-agent');
    expect(existsSync(join(destdir, 'var/lib/outpost-agent'))).toBe(false);
  });
});
