/**
 * Starts the real CLIs from dist/ for the benchmarks. Unlike the test helpers, output goes to
 * log files rather than into strings held by the bench process, so that a long run does not
 * grow the process that measures.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { waitFor } from '../test/helpers/processes.js';

/** The repo root (this file runs from dist/bench/). */
export const ROOT = path.resolve(import.meta.dirname, '..', '..');
const CP_CLI = path.join(ROOT, 'dist', 'control-plane', 'cli.js');
const AGENT_CLI = path.join(ROOT, 'dist', 'agent', 'cli.js');

/** Every child still running, ended hard if the bench exits early (a watchdog, an error). */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** A fresh temporary folder under the system's temp dir. */
export function benchDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), `outpost-bench-${prefix}-`));
}

/**
 * The same process, with its data folder deleted once it stopped (a stream run leaves a 1 GB
 * body there); `OUTPOST_BENCH_KEEP=1` keeps the folders, with their logs, for a look afterwards.
 */
export function deletingDirOnStop<T extends BenchProc>(proc: T, dir: string): T {
  return {
    ...proc,
    stop: async () => {
      await proc.stop();
      if (process.env.OUTPOST_BENCH_KEEP !== '1') rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A child process whose output goes to a log file. */
export interface BenchProc {
  child: ChildProcess;
  pid: number;
  logFile: string;
  log(): string;
  stop(): Promise<void>;
}

/** Spawns `node args` with stdout and stderr appended to `logFile`. */
export function spawnLogged(args: string[], logFile: string, env: NodeJS.ProcessEnv): BenchProc {
  const fd = openSync(logFile, 'a');
  // OUTPOST_BENCH_PROFILE_DIR: CPU profiles of every child, for finding hot paths.
  const profileDir = process.env.OUTPOST_BENCH_PROFILE_DIR;
  const flags = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const child = spawn(process.execPath, [...flags, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  live.add(child);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      live.delete(child);
      resolve();
    }),
  );
  return {
    child,
    pid: child.pid!,
    logFile,
    log: () => readFileSync(logFile, 'utf8'),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        // A stop that hangs is ended hard: the bench must finish by itself.
        const hard = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(hard);
      }
    },
  };
}

/** Polls `fn` every 50 ms until it returns a value, or throws after `timeoutMs` (the tests' own). */
export const pollFor = waitFor;

/** A running control plane with its admin key. */
export interface BenchControlPlane extends BenchProc {
  url: string;
  adminKey: string;
  dataDir: string;
  /** Calls the API with the admin key; JSON in and out. */
  call(method: string, route: string, body?: unknown): Promise<{ status: number; body: any }>;
}

/** Starts `control-plane start` on a free loopback port. */
export async function startBenchControlPlane(
  env: NodeJS.ProcessEnv = {},
): Promise<BenchControlPlane> {
  const dataDir = benchDir('cp');
  const proc = spawnLogged(
    [CP_CLI, 'start', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir],
    path.join(dataDir, 'cp.log'),
    { OUTPOST_ALLOW_PRIVATE_TARGETS: '1', OUTPOST_LOG_LEVEL: 'info', ...env },
  );
  const url = await pollFor('the control plane to listen', () => {
    if (proc.child.exitCode !== null) throw new Error(`control plane exited: ${proc.log()}`);
    return /Listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(proc.log())?.[1];
  });
  const adminKey = readFileSync(path.join(dataDir, 'admin-api-key'), 'utf8').trim();
  const call = async (method: string, route: string, body?: unknown) => {
    const res = await fetch(`${url}${route}`, {
      method,
      headers: {
        authorization: `Bearer ${adminKey}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? null : JSON.parse(text) };
  };
  return deletingDirOnStop({ ...proc, url, adminKey, dataDir, call }, dataDir);
}

/** Creates a terminal, enrolls a data dir with the real CLI, runs the agent until online. */
export async function startBenchAgent(
  cp: BenchControlPlane,
  extraArgs: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<BenchProc & { terminalId: string; dataDir: string }> {
  const created = await cp.call('POST', '/v1/terminals', { name: 'bench-site' });
  if (created.status !== 201) throw new Error(`terminal create: ${JSON.stringify(created.body)}`);
  const terminalId = created.body.id as string;
  const dataDir = benchDir('agent');
  const enrolled = spawnSync(
    process.execPath,
    [
      AGENT_CLI,
      'enroll',
      '--url',
      cp.url,
      '--token',
      created.body.enrollmentToken,
      '--data-dir',
      dataDir,
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
  if (enrolled.status !== 0) throw new Error(`enroll failed: ${enrolled.stderr}`);
  const proc = spawnLogged(
    [AGENT_CLI, 'run', '--data-dir', dataDir, '--log-format', 'json', ...extraArgs],
    path.join(dataDir, 'agent.log'),
    { OUTPOST_LOG_LEVEL: 'info', ...env },
  );
  await pollFor('the terminal to come online', async () => {
    if (proc.child.exitCode !== null) throw new Error(`agent exited: ${proc.log()}`);
    const t = await cp.call('GET', `/v1/terminals/${terminalId}`);
    return t.body.status === 'online' ? true : undefined;
  });
  return deletingDirOnStop({ ...proc, terminalId, dataDir }, dataDir);
}
