import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { describe, expect, it } from 'vitest';

import {
  quoteWindowsArg,
  scFailureActions,
  WINDOWS_SERVICE,
  windowsCommandLine,
  windowsInstallSteps,
  windowsUninstallSteps,
  type WindowsStep,
} from '../../agent/service/windows.js';

const windowsDir = resolve(import.meta.dirname, '..', '..', 'installers', 'windows');

const base = { programFiles: 'C:\\Program Files', programData: 'C:\\ProgramData' };
const install = {
  ...base,
  binaryPath: 'D:\\downloads\\terminal-agent.exe',
  wrapperPath: 'D:\\downloads\\outpost-agent-service.exe',
};

function commandLines(steps: WindowsStep[]): string[] {
  return steps.flatMap((s) => (s.kind === 'exec' ? [windowsCommandLine(s)] : []));
}

describe('the Windows install steps', () => {
  it('register an automatic service with restarts, a locked-down data dir and its env', () => {
    expect(commandLines(windowsInstallSteps(install))).toEqual([
      'sc.exe stop OutpostAgent',
      'icacls.exe C:\\ProgramData\\Outpost\\agent /inheritance:r /grant:r *S-1-5-18:(OI)(CI)F *S-1-5-32-544:(OI)(CI)F',
      'sc.exe create OutpostAgent binPath= "\\"C:\\Program Files\\Outpost\\outpost-agent-service.exe\\"" start= auto DisplayName= "Outpost terminal agent"',
      'sc.exe config OutpostAgent binPath= "\\"C:\\Program Files\\Outpost\\outpost-agent-service.exe\\"" start= auto DisplayName= "Outpost terminal agent"',
      'sc.exe description OutpostAgent "Runs requests from the Outpost control plane inside this network."',
      'sc.exe failure OutpostAgent reset= 86400 actions= restart/5000/restart/5000/restart/60000',
      'sc.exe failureflag OutpostAgent 1',
      'reg.exe add HKLM\\SYSTEM\\CurrentControlSet\\Services\\OutpostAgent /v Environment /t REG_MULTI_SZ /d OUTPOST_AGENT_DATA_DIR=C:\\ProgramData\\Outpost\\agent /f',
      'sc.exe start OutpostAgent',
    ]);
  });

  it('copy both executables and write the service host config into Program Files', () => {
    const files = windowsInstallSteps(install).filter((s) => s.kind !== 'exec');

    expect(files.map((s) => ({ ...s, content: undefined }))).toEqual([
      { kind: 'mkdir', path: 'C:\\Program Files\\Outpost', content: undefined },
      {
        kind: 'copy',
        from: install.binaryPath,
        to: 'C:\\Program Files\\Outpost\\terminal-agent.exe',
        content: undefined,
      },
      {
        kind: 'copy',
        from: install.wrapperPath,
        to: 'C:\\Program Files\\Outpost\\outpost-agent-service.exe',
        content: undefined,
      },
      {
        kind: 'write',
        path: 'C:\\Program Files\\Outpost\\outpost-agent-service.xml',
        content: undefined,
      },
      { kind: 'mkdir', path: 'C:\\ProgramData\\Outpost\\agent', content: undefined },
    ]);
  });

  it('write a service host config that runs `terminal-agent.exe run` with the data dir set', () => {
    const config = windowsInstallSteps(install).find((s) => s.kind === 'write');

    expect(config?.kind === 'write' && config.content.split('\r\n')).toEqual([
      '<service>',
      '  <id>OutpostAgent</id>',
      '  <name>Outpost terminal agent</name>',
      '  <description>Runs requests from the Outpost control plane inside this network.</description>',
      '  <executable>C:\\Program Files\\Outpost\\terminal-agent.exe</executable>',
      '  <arguments>run</arguments>',
      '  <env name="OUTPOST_AGENT_DATA_DIR" value="C:\\ProgramData\\Outpost\\agent"/>',
      '  <startmode>Automatic</startmode>',
      '  <stoptimeout>60 sec</stoptimeout>',
      '  <logpath>C:\\ProgramData\\Outpost\\agent\\logs</logpath>',
      '  <log mode="roll-by-size"><sizeThreshold>10240</sizeThreshold><keepFiles>8</keepFiles></log>',
      '</service>',
      '',
    ]);
  });

  it('enroll into the data dir after locking it down and before the service starts, token hidden in logs', () => {
    const steps = windowsInstallSteps({
      ...install,
      url: 'http://127.0.0.1:8080',
      token: 'tok-789',
      name: 'branch 01',
      force: true,
    });
    const lines = commandLines(steps);
    const enroll = lines.findIndex((l) => l.includes(' enroll '));

    expect(lines[enroll]).toBe(
      '"C:\\Program Files\\Outpost\\terminal-agent.exe" enroll --url http://127.0.0.1:8080 --token *** --data-dir C:\\ProgramData\\Outpost\\agent --name "branch 01" --force',
    );
    expect(steps.find((s) => s.kind === 'exec' && s.args[0] === 'enroll')).toMatchObject({
      args: expect.arrayContaining(['tok-789']) as unknown,
    });
    expect(enroll).toBeGreaterThan(lines.findIndex((l) => l.startsWith('icacls.exe')));
    expect(enroll).toBeLessThan(lines.indexOf('sc.exe start OutpostAgent'));
  });

  it('leave the service stopped when asked to', () => {
    expect(commandLines(windowsInstallSteps({ ...install, start: false }))).not.toContain(
      'sc.exe start OutpostAgent',
    );
  });

  it('refuse a URL without a token and relative folders, naming the option', () => {
    expect(() => windowsInstallSteps({ ...install, url: 'http://127.0.0.1:1' })).toThrow(
      /url and token go together/,
    );
    expect(() => windowsInstallSteps({ ...install, programData: 'ProgramData' })).toThrow(
      /programData must be an absolute Windows path/,
    );
  });
});

describe('the Windows uninstall steps', () => {
  it('stop and delete the service and its files, keeping the data dir', () => {
    expect(windowsUninstallSteps(base)).toEqual([
      {
        kind: 'exec',
        program: 'sc.exe',
        args: ['stop', 'OutpostAgent'],
        okExitCodes: [0, 1060, 1062],
      },
      { kind: 'exec', program: 'sc.exe', args: ['delete', 'OutpostAgent'], okExitCodes: [0, 1060] },
      { kind: 'remove', path: 'C:\\Program Files\\Outpost', recursive: true },
    ]);
  });

  it('also remove the data dir with purge', () => {
    expect(windowsUninstallSteps({ ...base, purge: true }).at(-1)).toEqual({
      kind: 'remove',
      path: 'C:\\ProgramData\\Outpost\\agent',
      recursive: true,
    });
  });
});

describe('Windows argument quoting', () => {
  it('follows the C runtime rules for spaces, quotes and trailing backslashes', () => {
    expect(quoteWindowsArg('plain')).toBe('plain');
    expect(quoteWindowsArg('')).toBe('""');
    expect(quoteWindowsArg('a b')).toBe('"a b"');
    expect(quoteWindowsArg('say "hi"')).toBe('"say \\"hi\\""');
    expect(quoteWindowsArg('C:\\dir with space\\')).toBe('"C:\\dir with space\\\\"');
    expect(quoteWindowsArg('C:\\a\\b')).toBe('C:\\a\\b');
  });
});

describe('the PowerShell scripts', () => {
  const installPs1 = readFileSync(join(windowsDir, 'install-service.ps1'), 'utf8');
  const uninstallPs1 = readFileSync(join(windowsDir, 'uninstall-service.ps1'), 'utf8');

  it('carry the same service definition as agent/service/windows.ts', () => {
    for (const text of [
      `$ServiceName = '${WINDOWS_SERVICE.name}'`,
      `$DisplayName = '${WINDOWS_SERVICE.displayName}'`,
      `$Description = '${WINDOWS_SERVICE.description}'`,
      `'${WINDOWS_SERVICE.executableName}'`,
      `'${WINDOWS_SERVICE.wrapperName}'`,
      `'${WINDOWS_SERVICE.wrapperConfigName}'`,
      `'reset=', '${WINDOWS_SERVICE.failureResetSeconds}', 'actions=', '${scFailureActions()}'`,
      `@('failureflag', $ServiceName, '1')`,
      `'/inheritance:r', '/grant:r', ${WINDOWS_SERVICE.dataDirGrants.map((g) => `'${g}'`).join(', ')}`,
      `HKLM\\SYSTEM\\CurrentControlSet\\Services\\$ServiceName`,
      `'REG_MULTI_SZ', '/d', "OUTPOST_AGENT_DATA_DIR=$DataDir"`,
      "Join-Path $env:ProgramData 'Outpost\\agent'",
      '-StartupType Automatic',
    ]) {
      expect(installPs1).toContain(text);
    }
    expect(uninstallPs1).toContain(`$ServiceName = '${WINDOWS_SERVICE.name}'`);
    expect(uninstallPs1).toContain("@('delete', $ServiceName) @(0, 1060)");
  });

  it('enroll only with both -Url and -Token', () => {
    expect(installPs1).toContain(
      "if ([bool]$Url -ne [bool]$Token) { throw '-Url and -Token go together",
    );
    expect(installPs1).toContain(
      "$enroll = @('enroll', '--url', $Url, '--token', $Token, '--data-dir', $DataDir)",
    );
  });
});
