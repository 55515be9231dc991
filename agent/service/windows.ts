/**
 * The Windows service, as data: every step that installs or removes it, with the exact
 * command lines of sc.exe, icacls and reg.exe. `terminal-agent service` on Windows runs these
 * steps; installers/windows/*.ps1 perform the same ones for administrators who deploy with
 * PowerShell, and the tests here check both against this file (no Windows is at hand to run
 * them).
 *
 * A Node program cannot answer the Service Control Manager itself (it never calls
 * StartServiceCtrlDispatcher), so SCM would stop it after 30 s with error 1053. The service
 * therefore runs a small service host, WinSW, renamed `outpost-agent-service.exe`, which reads
 * `outpost-agent-service.xml` beside it and runs `terminal-agent.exe run` as its child.
 */
import { win32 } from 'node:path';

/** The fixed parts of the Windows service. */
export const WINDOWS_SERVICE = {
  name: 'OutpostAgent',
  displayName: 'Outpost terminal agent',
  description: 'Runs requests from the Outpost control plane inside this network.',
  executableName: 'terminal-agent.exe',
  wrapperName: 'outpost-agent-service.exe',
  wrapperConfigName: 'outpost-agent-service.xml',
  /** Seconds without failure after which SCM counts failures from zero again. */
  failureResetSeconds: 86_400,
  /** Restart after 5 s, again after 5 s, then every 60 s. */
  failureActions: [
    { action: 'restart', delayMs: 5_000 },
    { action: 'restart', delayMs: 5_000 },
    { action: 'restart', delayMs: 60_000 },
  ],
  /** Who may read the data dir: LocalSystem (S-1-5-18) and Administrators (S-1-5-32-544). */
  dataDirGrants: ['*S-1-5-18:(OI)(CI)F', '*S-1-5-32-544:(OI)(CI)F'],
  registryKey: 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\OutpostAgent',
} as const;

/** sc.exe's exit codes that a re-run meets and that are not failures. */
export const SC_SERVICE_EXISTS = 1073;
export const SC_SERVICE_MISSING = 1060;
export const SC_SERVICE_NOT_ACTIVE = 1062;

/** One step of a plan. Paths are absolute Windows paths. */
export type WindowsStep =
  | { kind: 'mkdir'; path: string }
  | { kind: 'copy'; from: string; to: string }
  | { kind: 'write'; path: string; content: string }
  | { kind: 'remove'; path: string; recursive: boolean }
  | { kind: 'exec'; program: string; args: string[]; okExitCodes: number[]; secret?: boolean };

/** Where things go and what to do; compiled by `compileWindowsOptions`. */
export interface WindowsServiceOptions {
  /** %ProgramFiles%, e.g. `C:\Program Files`. */
  programFiles: string;
  /** %ProgramData%, e.g. `C:\ProgramData`. */
  programData: string;
  /** The terminal-agent.exe to install (for install only). */
  binaryPath?: string;
  /** The WinSW executable to install as the service host (for install only). */
  wrapperPath?: string;
  url?: string;
  token?: string;
  name?: string;
  force?: boolean;
  /** Start the service at the end of the install (default true). */
  start?: boolean;
  /** On uninstall, also remove the data dir (the enrollment and credentials). */
  purge?: boolean;
}

/** Paths derived from the options. */
export interface WindowsPaths {
  installDir: string;
  dataDir: string;
  executable: string;
  wrapper: string;
  wrapperConfig: string;
}

/** The install folder and data dir for the given ProgramFiles and ProgramData. */
export function windowsPaths(options: WindowsServiceOptions): WindowsPaths {
  const installDir = win32.join(options.programFiles, 'Outpost');
  return {
    installDir,
    dataDir: win32.join(options.programData, 'Outpost', 'agent'),
    executable: win32.join(installDir, WINDOWS_SERVICE.executableName),
    wrapper: win32.join(installDir, WINDOWS_SERVICE.wrapperName),
    wrapperConfig: win32.join(installDir, WINDOWS_SERVICE.wrapperConfigName),
  };
}

/** Rejects options that do not go together; names the option at fault. */
function checkOptions(options: WindowsServiceOptions): void {
  for (const key of ['programFiles', 'programData'] as const) {
    if (!win32.isAbsolute(options[key])) {
      throw new TypeError(`${key} must be an absolute Windows path, got "${options[key]}"`);
    }
  }
  if ((options.url === undefined) !== (options.token === undefined)) {
    throw new TypeError('url and token go together: give both to enroll, or neither');
  }
}

/** The sc.exe `failure` actions argument, e.g. `restart/5000/restart/5000/restart/60000`. */
export function scFailureActions(): string {
  return WINDOWS_SERVICE.failureActions.map((a) => `${a.action}/${a.delayMs}`).join('/');
}

/** The steps that install (or upgrade) the service. */
export function windowsInstallSteps(options: WindowsServiceOptions): WindowsStep[] {
  checkOptions(options);
  if (options.binaryPath === undefined || options.wrapperPath === undefined) {
    throw new TypeError('binaryPath and wrapperPath are needed to install');
  }
  const p = windowsPaths(options);
  const name = WINDOWS_SERVICE.name;
  const sc = (args: string[], okExitCodes: number[] = [0]): WindowsStep => ({
    kind: 'exec',
    program: 'sc.exe',
    args,
    okExitCodes,
  });
  const serviceConfig = [
    `binPath=`,
    `"${p.wrapper}"`,
    'start=',
    'auto',
    'DisplayName=',
    WINDOWS_SERVICE.displayName,
  ];

  const steps: WindowsStep[] = [
    // An upgrade replaces files that a running service holds open.
    sc(['stop', name], [0, SC_SERVICE_MISSING, SC_SERVICE_NOT_ACTIVE]),
    { kind: 'mkdir', path: p.installDir },
    { kind: 'copy', from: options.binaryPath, to: p.executable },
    { kind: 'copy', from: options.wrapperPath, to: p.wrapper },
    { kind: 'write', path: p.wrapperConfig, content: winswConfig(p) },
    { kind: 'mkdir', path: p.dataDir },
    // Only LocalSystem (the service) and Administrators: the folder holds the terminal's keys.
    {
      kind: 'exec',
      program: 'icacls.exe',
      args: [p.dataDir, '/inheritance:r', '/grant:r', ...WINDOWS_SERVICE.dataDirGrants],
      okExitCodes: [0],
    },
  ];

  if (options.url !== undefined && options.token !== undefined) {
    const args = [
      'enroll',
      '--url',
      options.url,
      '--token',
      options.token,
      '--data-dir',
      p.dataDir,
    ];
    if (options.name !== undefined) args.push('--name', options.name);
    if (options.force === true) args.push('--force');
    steps.push({ kind: 'exec', program: p.executable, args, okExitCodes: [0], secret: true });
  }

  steps.push(
    sc(['create', name, ...serviceConfig], [0, SC_SERVICE_EXISTS]),
    // `create` leaves an existing service as it was; `config` brings it to this definition.
    sc(['config', name, ...serviceConfig]),
    sc(['description', name, WINDOWS_SERVICE.description]),
    sc([
      'failure',
      name,
      'reset=',
      String(WINDOWS_SERVICE.failureResetSeconds),
      'actions=',
      scFailureActions(),
    ]),
    // Also restart after a non-zero exit, not only after a crash.
    sc(['failureflag', name, '1']),
    {
      kind: 'exec',
      program: 'reg.exe',
      args: [
        'add',
        WINDOWS_SERVICE.registryKey,
        '/v',
        'Environment',
        '/t',
        'REG_MULTI_SZ',
        '/d',
        `OUTPOST_AGENT_DATA_DIR=${p.dataDir}`,
        '/f',
      ],
      okExitCodes: [0],
    },
  );
  if (options.start !== false) steps.push(sc(['start', name]));
  return steps;
}

/** The steps that remove the service; the data dir stays unless `purge`. */
export function windowsUninstallSteps(options: WindowsServiceOptions): WindowsStep[] {
  checkOptions(options);
  const p = windowsPaths(options);
  const name = WINDOWS_SERVICE.name;
  const steps: WindowsStep[] = [
    {
      kind: 'exec',
      program: 'sc.exe',
      args: ['stop', name],
      okExitCodes: [0, SC_SERVICE_MISSING, SC_SERVICE_NOT_ACTIVE],
    },
    {
      kind: 'exec',
      program: 'sc.exe',
      args: ['delete', name],
      okExitCodes: [0, SC_SERVICE_MISSING],
    },
    { kind: 'remove', path: p.installDir, recursive: true },
  ];
  if (options.purge === true) steps.push({ kind: 'remove', path: p.dataDir, recursive: true });
  return steps;
}

/** The WinSW configuration: which program the service host runs, with which environment. */
export function winswConfig(p: WindowsPaths): string {
  return [
    '<service>',
    `  <id>${xml(WINDOWS_SERVICE.name)}</id>`,
    `  <name>${xml(WINDOWS_SERVICE.displayName)}</name>`,
    `  <description>${xml(WINDOWS_SERVICE.description)}</description>`,
    `  <executable>${xml(p.executable)}</executable>`,
    '  <arguments>run</arguments>',
    `  <env name="OUTPOST_AGENT_DATA_DIR" value="${xml(p.dataDir)}"/>`,
    '  <startmode>Automatic</startmode>',
    // Ctrl+C first, so that running jobs finish; the agent's own deadline is shorter.
    '  <stoptimeout>60 sec</stoptimeout>',
    `  <logpath>${xml(win32.join(p.dataDir, 'logs'))}</logpath>`,
    '  <log mode="roll-by-size"><sizeThreshold>10240</sizeThreshold><keepFiles>8</keepFiles></log>',
    '</service>',
    '',
  ].join('\r\n');
}

/**
 * One command line as Windows programs parse it (the C runtime's rules, which Node follows
 * when it starts a process): for logs and for the tests. Secrets are shown as `***`.
 */
export function windowsCommandLine(step: Extract<WindowsStep, { kind: 'exec' }>): string {
  const args = step.secret === true ? redactToken(step.args) : step.args;
  return [step.program, ...args].map(quoteWindowsArg).join(' ');
}

function redactToken(args: string[]): string[] {
  return args.map((arg, i) => (args[i - 1] === '--token' ? '***' : arg));
}

/** Quotes one argument by the C runtime's rules: backslashes double only before a quote. */
export function quoteWindowsArg(arg: string): string {
  if (arg !== '' && !/[\s"]/.test(arg)) return arg;
  let out = '"';
  let slashes = 0;
  for (const ch of arg) {
    if (ch === '\\') {
      slashes += 1;
      continue;
    }
    out += ch === '"' ? '\\'.repeat(slashes * 2 + 1) + '"' : '\\'.repeat(slashes) + ch;
    slashes = 0;
  }
  return `${out}${'\\'.repeat(slashes * 2)}"`;
}

function xml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}
