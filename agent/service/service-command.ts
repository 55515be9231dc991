/**
 * `terminal-agent service install | uninstall | status`: the agent as a system service.
 *
 * On Linux these run installers/linux/install.sh and uninstall.sh (carried inside the single
 * executable as SEA assets, read from the repository otherwise) and ask systemd for the state.
 * On Windows they run the steps of ./windows.ts. `--destdir` stages a Linux install under a
 * folder and changes nothing on the running system.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, win32 } from 'node:path';
import { getAsset, isSea } from 'node:sea';
import { fileURLToPath } from 'node:url';

import type { Command } from 'commander';

import { OutpostError } from '../../shared/errors.js';
import {
  WINDOWS_SERVICE,
  windowsCommandLine,
  windowsInstallSteps,
  windowsPaths,
  windowsUninstallSteps,
  type WindowsServiceOptions,
  type WindowsStep,
} from './windows.js';

/** The systemd unit's name and where install.sh puts it. */
export const LINUX_SERVICE = 'outpost-agent';
export const LINUX_UNIT_PATH = '/etc/systemd/system/outpost-agent.service';
export const LINUX_DATA_DIR = '/var/lib/outpost-agent';

/** The files of installers/linux, by their SEA asset key. */
const LINUX_FILES = ['install.sh', 'uninstall.sh', 'outpost-agent.service'] as const;

interface InstallFlags {
  binary?: string;
  serviceWrapper?: string;
  url?: string;
  token?: string;
  name?: string;
  force?: boolean;
  start: boolean;
  destdir?: string;
}

interface UninstallFlags {
  purge?: boolean;
  destdir?: string;
}

interface StatusFlags {
  destdir?: string;
  json?: boolean;
}

/** Adds `service install | uninstall | status` to the agent's command line. */
export function registerServiceCommands(program: Command): void {
  const service = program
    .command('service')
    .description('install, remove or inspect the agent as a system service');

  service
    .command('install')
    .description('install the agent as a service (systemd or Windows), enroll, and start it')
    .option('--binary <path>', 'the terminal-agent executable to install (default: this one)')
    .option('--service-wrapper <path>', 'Windows only: the WinSW service host to install')
    .option('--url <url>', "enroll: the control plane's base URL")
    .option('--token <token>', 'enroll: the enrollment token (default: OUTPOST_ENROLLMENT_TOKEN)')
    .option('--name <name>', 'enroll: the name of this terminal')
    .option('--force', 'enroll even when the data dir is already enrolled')
    .option('--no-start', 'install, but do not start the service')
    .option('--destdir <dir>', 'Linux only: stage under this folder, change nothing else')
    .action((flags: InstallFlags) => {
      // As for `enroll`, the token may come from the environment to keep it out of `ps`.
      if (flags.url !== undefined && flags.token === undefined) {
        flags.token = process.env.OUTPOST_ENROLLMENT_TOKEN || undefined;
      }
      if ((flags.url === undefined) !== (flags.token === undefined)) {
        throw new OutpostError(
          'VALIDATION_FAILED',
          '--url and --token (or OUTPOST_ENROLLMENT_TOKEN) go together',
          { field: 'url' },
        );
      }
      process.exitCode = process.platform === 'win32' ? installWindows(flags) : installLinux(flags);
    });

  service
    .command('uninstall')
    .description('stop and remove the service; keeps the data dir unless --purge')
    .option('--purge', 'also remove the data dir (enrollment and credentials) and the user')
    .option('--destdir <dir>', 'Linux only: work under this folder, change nothing else')
    .action((flags: UninstallFlags) => {
      process.exitCode =
        process.platform === 'win32' ? uninstallWindows(flags) : uninstallLinux(flags);
    });

  service
    .command('status')
    .description('whether the service is installed and running (exit 0 when active)')
    .option('--destdir <dir>', 'Linux only: look for a staged install under this folder')
    .option('--json', 'print {installed, state} as JSON')
    .action((flags: StatusFlags) => {
      const status = process.platform === 'win32' ? statusWindows() : statusLinux(flags);
      const text = flags.json === true ? JSON.stringify(status) : status.state;
      process.stdout.write(`${text}\n`);
      process.exitCode = !status.installed ? 2 : status.state === 'active' ? 0 : 1;
    });
}

/** What `service status` reports: `not installed`, or systemd's / SCM's word for the state. */
export interface ServiceStatus {
  installed: boolean;
  state: string;
}

// ---- Linux ---------------------------------------------------------------------------------

/** The executable to install: --binary, else this single executable. */
function installedBinary(flags: InstallFlags): string {
  if (flags.binary !== undefined) return flags.binary;
  if (isSea()) return process.execPath;
  throw new OutpostError(
    'VALIDATION_FAILED',
    'service install needs the terminal-agent single executable: pass --binary PATH ' +
      '(build one with `npm run package`)',
    { field: 'binary' },
  );
}

function installLinux(flags: InstallFlags): number {
  const args = ['--binary', installedBinary(flags)];
  if (flags.url !== undefined) args.push('--url', flags.url);
  if (flags.name !== undefined) args.push('--name', flags.name);
  if (flags.force === true) args.push('--force');
  if (!flags.start) args.push('--no-start');
  if (flags.destdir !== undefined) args.push('--destdir', resolve(flags.destdir));
  // The token goes through the environment so that it is not in install.sh's command line.
  const env: Record<string, string> =
    flags.token === undefined ? {} : { OUTPOST_ENROLLMENT_TOKEN: flags.token };
  return runLinuxScript('install.sh', args, env);
}

function uninstallLinux(flags: UninstallFlags): number {
  const args: string[] = [];
  if (flags.purge === true) args.push('--purge');
  if (flags.destdir !== undefined) args.push('--destdir', resolve(flags.destdir));
  return runLinuxScript('uninstall.sh', args, {});
}

function statusLinux(flags: StatusFlags): ServiceStatus {
  if (!existsSync(join(flags.destdir ?? '/', LINUX_UNIT_PATH))) {
    return { installed: false, state: 'not installed' };
  }
  if (flags.destdir !== undefined) return { installed: true, state: 'staged' };
  const result = spawnSync('systemctl', ['is-active', LINUX_SERVICE], { encoding: 'utf8' });
  if (result.error !== undefined) throw result.error;
  return { installed: true, state: result.stdout.trim() || 'unknown' };
}

/** Runs one of the Linux scripts with bash; its output goes straight to the terminal. */
function runLinuxScript(script: string, args: string[], env: Record<string, string>): number {
  const files = linuxScriptFolder();
  try {
    const result = spawnSync('bash', [join(files.folder, script), ...args], {
      stdio: 'inherit',
      env: { ...process.env, ...env },
    });
    if (result.error !== undefined) throw result.error;
    return result.status ?? 1;
  } finally {
    files.dispose();
  }
}

/**
 * The folder holding installers/linux: inside the single executable, a private temporary copy
 * of the embedded assets; otherwise the repository's own folder, found upwards from here (this
 * file runs from agent/service or dist/agent/service).
 */
function linuxScriptFolder(): { folder: string; dispose: () => void } {
  if (isSea()) {
    const folder = mkdtempSync(join(tmpdir(), 'outpost-agent-service-'));
    for (const file of LINUX_FILES) {
      writeFileSync(join(folder, file), getAsset(`linux/${file}`, 'utf8'), { mode: 0o700 });
    }
    return { folder, dispose: () => rmSync(folder, { recursive: true, force: true }) };
  }
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'installers', 'linux');
    if (existsSync(join(candidate, 'install.sh'))) return { folder: candidate, dispose: () => {} };
    const parent = dirname(dir);
    if (parent === dir) {
      throw new OutpostError('INTERNAL', 'installers/linux is not found beside this agent');
    }
    dir = parent;
  }
}

// ---- Windows -------------------------------------------------------------------------------

function windowsBase(): Pick<WindowsServiceOptions, 'programFiles' | 'programData'> {
  return {
    programFiles: process.env.ProgramFiles ?? 'C:\\Program Files',
    programData: process.env.ProgramData ?? 'C:\\ProgramData',
  };
}

function installWindows(flags: InstallFlags): number {
  const binaryPath = installedBinary(flags);
  const base = windowsBase();
  const dataDir = windowsPaths(base).dataDir;
  // Without an enrollment the agent could only fail: install, but start only an enrolled one.
  let start = flags.start;
  if (start && flags.url === undefined) {
    const status = spawnSync(binaryPath, ['status', '--data-dir', dataDir], { stdio: 'ignore' });
    if (status.status === 2) {
      start = false;
      process.stdout.write('Not enrolled yet: the service is installed but not started.\n');
    }
  }
  return runWindowsSteps(
    windowsInstallSteps({
      ...base,
      binaryPath,
      wrapperPath:
        flags.serviceWrapper ?? win32.join(win32.dirname(binaryPath), WINDOWS_SERVICE.wrapperName),
      url: flags.url,
      token: flags.token,
      name: flags.name,
      force: flags.force,
      start,
    }),
  );
}

function uninstallWindows(flags: UninstallFlags): number {
  return runWindowsSteps(windowsUninstallSteps({ ...windowsBase(), purge: flags.purge }));
}

function statusWindows(): ServiceStatus {
  const result = spawnSync('sc.exe', ['query', WINDOWS_SERVICE.name], { encoding: 'utf8' });
  if (result.error !== undefined) throw result.error;
  if (result.status !== 0) return { installed: false, state: 'not installed' };
  const state = /STATE\s*:\s*\d+\s+(\w+)/.exec(result.stdout)?.[1] ?? 'unknown';
  return { installed: true, state: state === 'RUNNING' ? 'active' : state.toLowerCase() };
}

/** Runs the steps in order; stops at the first that fails and returns its exit code. */
function runWindowsSteps(steps: WindowsStep[]): number {
  for (const step of steps) {
    switch (step.kind) {
      case 'mkdir':
        mkdirSync(step.path, { recursive: true });
        break;
      case 'copy':
        if (step.from.toLowerCase() !== step.to.toLowerCase()) copyFileSync(step.from, step.to);
        break;
      case 'write':
        writeFileSync(step.path, step.content);
        break;
      case 'remove':
        rmSync(step.path, { recursive: step.recursive, force: true });
        break;
      case 'exec': {
        process.stdout.write(`> ${windowsCommandLine(step)}\n`);
        const result = spawnSync(step.program, step.args, { stdio: 'inherit' });
        if (result.error !== undefined) throw result.error;
        const code = result.status ?? 1;
        if (!step.okExitCodes.includes(code)) return code;
      }
    }
  }
  return 0;
}
