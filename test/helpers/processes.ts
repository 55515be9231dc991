/**
 * Starts the real control plane and terminal agents as separate processes (the built CLIs in
 * dist/), with helpers to drive the HTTP API. Every process listens on loopback only and is
 * killed when the test ends.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** The repo root. */
export const ROOT = path.resolve(import.meta.dirname, '..', '..');
const CP_CLI = path.join(ROOT, 'dist', 'control-plane', 'cli.js');
const AGENT_CLI = path.join(ROOT, 'dist', 'agent', 'cli.js');

/** A fresh temporary folder, removed by `cleanup`. */
export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), `outpost-${prefix}-`));
}

/** A started process with its collected output. */
export interface Proc {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function startProcess(args: string[], env: NodeJS.ProcessEnv): Proc {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function waitFor<T>(
  what: string,
  fn: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 20_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A running control plane process. */
export interface ControlPlaneProc extends Proc {
  url: string;
  adminKey: string;
  dataDir: string;
  api: ApiClient;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `control-plane start` on a free loopback port. */
export async function startControlPlane(
  options: { dataDir?: string; env?: NodeJS.ProcessEnv; port?: number } = {},
): Promise<ControlPlaneProc> {
  const dataDir = options.dataDir ?? tempDir('cp');
  const proc = startProcess(
    [CP_CLI, 'start', '--port', String(options.port ?? 0), '--data-dir', dataDir],
    {
      OUTPOST_ALLOW_PRIVATE_TARGETS: '1',
      OUTPOST_HEARTBEAT_MS: '1000',
      OUTPOST_LOG_LEVEL: 'info',
      ...options.env,
    },
  );
  const url = await waitFor('the control plane to listen', () => {
    const m = /Listening on (http:\/\/\S+)/.exec(proc.stdout());
    if (proc.child.exitCode !== null) throw new Error(`control plane exited: ${proc.stderr()}`);
    return m?.[1];
  });
  const adminKey = readFileSync(path.join(dataDir, 'admin-api-key'), 'utf8').trim();
  return {
    ...proc,
    url,
    adminKey,
    dataDir,
    api: new ApiClient(url, adminKey),
    stop: async (signal = 'SIGTERM') => {
      if (proc.child.exitCode === null) proc.child.kill(signal);
      await proc.exited;
    },
  };
}

/** A JSON answer of the API. */
export interface ApiAnswer<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

/** A tiny client of the control plane's HTTP API. */
export class ApiClient {
  constructor(
    readonly url: string,
    readonly key: string,
  ) {}

  async call<T = any>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<ApiAnswer<T>> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      // Not JSON: the raw text.
    }
    return { status: res.status, headers: res.headers, body: parsed as T };
  }

  /** Another client with a different key. */
  withKey(key: string): ApiClient {
    return new ApiClient(this.url, key);
  }
}

/** A running terminal agent process. */
export interface AgentProc extends Proc {
  dataDir: string;
  terminalId: string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Runs a `terminal-agent` command to completion. */
export function agentCommand(args: string[], env: NodeJS.ProcessEnv = {}, input?: string) {
  const r = spawnSync(process.execPath, [AGENT_CLI, ...args], {
    env: { ...process.env, ...env },
    input,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a `control-plane` command to completion. */
export function controlPlaneCommand(args: string[], env: NodeJS.ProcessEnv = {}, input?: string) {
  const r = spawnSync(process.execPath, [CP_CLI, ...args], {
    env: { ...process.env, ...env },
    input,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Creates a terminal through the API and enrolls a fresh data dir; returns ids. */
export async function createAndEnroll(
  cp: ControlPlaneProc,
  name = 'test-terminal',
  dataDir = tempDir('agent'),
) {
  const created = await cp.api.call('POST', '/v1/terminals', { name });
  if (created.status !== 201)
    throw new Error(`terminal create failed: ${JSON.stringify(created.body)}`);
  const r = agentCommand([
    'enroll',
    '--url',
    cp.url,
    '--token',
    created.body.enrollmentToken,
    '--data-dir',
    dataDir,
  ]);
  if (r.code !== 0) throw new Error(`enroll failed: ${r.stderr}`);
  return { terminalId: created.body.id as string, dataDir };
}

/** Starts `terminal-agent run` on an enrolled data dir and waits until the terminal is online. */
export async function startAgent(
  cp: ControlPlaneProc,
  terminalId: string,
  dataDir: string,
  extraArgs: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<AgentProc> {
  const proc = startProcess(
    [AGENT_CLI, 'run', '--data-dir', dataDir, '--log-format', 'json', ...extraArgs],
    {
      OUTPOST_LOG_LEVEL: 'info',
      ...env,
    },
  );
  await waitFor('the terminal to come online', async () => {
    if (proc.child.exitCode !== null)
      throw new Error(`agent exited: ${proc.stdout()} ${proc.stderr()}`);
    const t = await cp.api.call('GET', `/v1/terminals/${terminalId}`);
    return t.body.status === 'online' ? true : undefined;
  });
  return {
    ...proc,
    dataDir,
    terminalId,
    stop: async (signal = 'SIGTERM') => {
      if (proc.child.exitCode === null) proc.child.kill(signal);
      await proc.exited;
    },
  };
}

/** Waits until a job is final and returns it. */
export async function waitForJob(api: ApiClient, jobId: string, timeoutMs = 30_000): Promise<any> {
  return waitFor(
    `job ${jobId} to end`,
    async () => {
      const j = await api.call('GET', `/v1/jobs/${jobId}`);
      return ['succeeded', 'failed', 'cancelled', 'timed_out'].includes(j.body.state)
        ? j.body
        : undefined;
    },
    timeoutMs,
  );
}

export { waitFor };

/** Removes folders made by a test. */
export function cleanup(...dirs: string[]): void {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
