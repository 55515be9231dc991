import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { registerServiceCommands } from '../../agent/service/service-command.js';

const root = resolve(import.meta.dirname, '..', '..');
const linuxDir = join(root, 'installers', 'linux');
const fakeAgent = join(import.meta.dirname, 'fixtures', 'fake-terminal-agent.sh');

let work: string;
let destdir: string;
let agentLog: string;

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'outpost-installer-test-'));
  destdir = join(work, 'root');
  agentLog = join(work, 'agent-calls.log');
});

afterEach(() => {
  rmSync(work, { recursive: true, force: true });
});

/** Runs one of the Linux scripts and returns its exit status and output. */
function runScript(script: string, args: string[], env: Record<string, string> = {}) {
  const result = spawnSync('bash', [join(linuxDir, script), ...args], {
    encoding: 'utf8',
    env: { ...process.env, FAKE_AGENT_LOG: agentLog, ...env },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function mode(path: string): string {
  return (statSync(path).mode & 0o777).toString(8).padStart(4, '0');
}

function agentCalls(): string[] {
  return existsSync(agentLog) ? readFileSync(agentLog, 'utf8').trim().split('\n') : [];
}

describe('the systemd unit', () => {
  const unit = readFileSync(join(linuxDir, 'outpost-agent.service'), 'utf8');

  it('passes systemd-analyze verify once ExecStart points at a real file', () => {
    // verify insists that the executable exists; the installed path does not exist here.
    const copy = join(work, 'outpost-agent.service');
    writeFileSync(copy, unit.replace('/usr/local/bin/terminal-agent', '/bin/true'));

    const result = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });

    expect(result.stderr.split('\n').filter((l) => l.includes('outpost-agent'))).toEqual([]);
    expect(result.status).toBe(0);
  });

  it('runs the agent as its own user with a private state dir and no capabilities', () => {
    const settings = unit.split('\n').filter((l) => /^[A-Za-z]+=/.test(l));

    expect(settings).toEqual(
      expect.arrayContaining([
        'Type=simple',
        'ExecStart=/usr/local/bin/terminal-agent run',
        'Restart=on-failure',
        'User=outpost-agent',
        'StateDirectory=outpost-agent',
        'StateDirectoryMode=0700',
        'NoNewPrivileges=yes',
        'ProtectSystem=strict',
        'ProtectHome=yes',
        'PrivateTmp=yes',
        'CapabilityBoundingSet=',
        'AmbientCapabilities=',
        'ProtectKernelTunables=yes',
        'ProtectControlGroups=yes',
        'RestrictSUIDSGID=yes',
        'LockPersonality=yes',
      ]),
    );
    expect(settings.some((l) => l.startsWith('RestartSec='))).toBe(true);
  });

  it('leaves W+X memory allowed, since the V8 JIT needs it', () => {
    expect(unit).not.toMatch(/^MemoryDenyWriteExecute=/m);
  });
});

describe('install.sh and uninstall.sh', () => {
  it('pass bash -n and run under set -euo pipefail', () => {
    for (const script of ['install.sh', 'uninstall.sh']) {
      execFileSync('bash', ['-n', join(linuxDir, script)]);
      expect(readFileSync(join(linuxDir, script), 'utf8')).toContain('set -euo pipefail');
    }
  });

  it('install into a DESTDIR with the right files and modes, and only print system changes', () => {
    const result = runScript('install.sh', ['--binary', fakeAgent], { DESTDIR: destdir });

    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(mode(join(destdir, 'usr/local/bin/terminal-agent'))).toBe('0755');
    expect(readFileSync(join(destdir, 'usr/local/bin/terminal-agent'))).toEqual(
      readFileSync(fakeAgent),
    );
    expect(mode(join(destdir, 'etc/systemd/system/outpost-agent.service'))).toBe('0644');
    expect(mode(join(destdir, 'var/lib/outpost-agent'))).toBe('0700');
    expect(mode(join(destdir, 'var/log/outpost-agent'))).toBe('0750');
    expect(result.stdout).toMatch(/^would run: useradd --system .* outpost-agent$/m);
    expect(result.stdout).toMatch(/^would run: chown outpost-agent:outpost-agent /m);
    expect(result.stdout).toContain('would run: systemctl daemon-reload');
    expect(result.stdout).toContain('would run: systemctl enable --now outpost-agent');
    expect(agentCalls()).toEqual([]);
  });

  it('enroll with the staged executable and data dir when given a URL and token', () => {
    const result = runScript(
      'install.sh',
      ['--binary', fakeAgent, '--url', 'http://127.0.0.1:9', '--name', 'branch-01'],
      { DESTDIR: destdir, OUTPOST_ENROLLMENT_TOKEN: 'tok-123' },
    );

    expect(result.status).toBe(0);
    expect(agentCalls()).toEqual([
      `enroll --url http://127.0.0.1:9 --name branch-01|${destdir}/var/lib/outpost-agent|tok-123`,
    ]);
  });

  it('refuse a URL without a token, naming both options', () => {
    const result = runScript('install.sh', ['--binary', fakeAgent, '--url', 'http://127.0.0.1:9'], {
      DESTDIR: destdir,
    });

    expect(result.status).toBe(1);
    expect(result.stderr).toContain('--url and --token go together');
  });

  it('can run twice, and --no-start skips enabling the service', () => {
    runScript('install.sh', ['--binary', fakeAgent], { DESTDIR: destdir });
    writeFileSync(join(destdir, 'var/lib/outpost-agent/terminal.db'), 'enrolled');

    const again = runScript('install.sh', ['--binary', fakeAgent, '--no-start'], {
      DESTDIR: destdir,
    });

    expect(again.status).toBe(0);
    expect(again.stdout).not.toContain('systemctl enable');
    expect(readFileSync(join(destdir, 'var/lib/outpost-agent/terminal.db'), 'utf8')).toBe(
      'enrolled',
    );
  });

  it('uninstall keeps the data dir, and removes it with --purge', () => {
    runScript('install.sh', ['--binary', fakeAgent], { DESTDIR: destdir });
    writeFileSync(join(destdir, 'var/lib/outpost-agent/terminal.db'), 'enrolled');

    const kept = runScript('uninstall.sh', [], { DESTDIR: destdir });

    expect(kept.status).toBe(0);
    expect(kept.stdout).toContain('would run: systemctl disable --now outpost-agent');
    expect(existsSync(join(destdir, 'usr/local/bin/terminal-agent'))).toBe(false);
    expect(existsSync(join(destdir, 'etc/systemd/system/outpost-agent.service'))).toBe(false);
    expect(existsSync(join(destdir, 'var/lib/outpost-agent/terminal.db'))).toBe(true);
    expect(kept.stdout).not.toContain('userdel');

    const purged = runScript('uninstall.sh', ['--purge'], { DESTDIR: destdir });

    expect(purged.status).toBe(0);
    expect(existsSync(join(destdir, 'var/lib/outpost-agent'))).toBe(false);
    expect(existsSync(join(destdir, 'var/log/outpost-agent'))).toBe(false);
    expect(purged.stdout).toContain('would run: userdel outpost-agent');
  });
});

describe('terminal-agent service', () => {
  async function service(...args: string[]): Promise<void> {
    const program = new Command('terminal-agent').exitOverride();
    registerServiceCommands(program);
    await program.parseAsync(['service', ...args], { from: 'user' });
  }

  let exitCode: typeof process.exitCode;
  beforeEach(() => {
    exitCode = process.exitCode;
    process.env.FAKE_AGENT_LOG = agentLog;
  });
  afterEach(() => {
    process.exitCode = exitCode;
    delete process.env.FAKE_AGENT_LOG;
  });

  it('status says "not installed" (exit 2) before install and "staged" (exit 1) after', async () => {
    await service('status', '--destdir', destdir);
    expect(process.exitCode).toBe(2);

    await service('install', '--binary', fakeAgent, '--destdir', destdir, '--no-start');
    expect(process.exitCode).toBe(0);

    await service('status', '--destdir', destdir);
    expect(process.exitCode).toBe(1);
  });

  it('install runs install.sh with the token in the environment, not on its command line', async () => {
    await service(
      'install',
      '--binary',
      fakeAgent,
      '--destdir',
      destdir,
      '--url',
      'http://127.0.0.1:9',
      '--token',
      'tok-456',
    );

    expect(process.exitCode).toBe(0);
    expect(existsSync(join(destdir, 'usr/local/bin/terminal-agent'))).toBe(true);
    expect(agentCalls()).toEqual([
      `enroll --url http://127.0.0.1:9|${destdir}/var/lib/outpost-agent|tok-456`,
    ]);
  });

  it('uninstall --purge removes the staged install and its data', async () => {
    await service('install', '--binary', fakeAgent, '--destdir', destdir, '--no-start');
    await service('uninstall', '--purge', '--destdir', destdir);

    expect(process.exitCode).toBe(0);
    expect(existsSync(join(destdir, 'usr/local/bin/terminal-agent'))).toBe(false);
    expect(existsSync(join(destdir, 'var/lib/outpost-agent'))).toBe(false);
  });

  it('install outside the single executable without --binary names the missing option', async () => {
    await expect(service('install', '--destdir', destdir)).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      details: { field: 'binary' },
    });
  });
});
