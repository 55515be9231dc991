/**
 * `npm run demo`: Outpost's main job on one machine. It starts the control plane on its
 * embedded defaults, a sample "internal API" behind Basic auth, and a terminal agent as its own
 * process; binds an account to the terminal through the HTTP API; runs a few jobs through the
 * terminal; shows `terminal-agent status`; and stops everything cleanly.
 *
 * `npm run demo -- --target URL [--path /x ...]` points it at another API instead (auth none,
 * or Basic with OUTPOST_DEMO_USERNAME and OUTPOST_DEMO_PASSWORD).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { SAMPLE_PASSWORD, SAMPLE_USER, startSampleApi } from './sample-api.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..', '..');
const CP_CLI = path.join(ROOT, 'dist', 'control-plane', 'cli.js');
const AGENT_CLI = path.join(ROOT, 'dist', 'agent', 'cli.js');
const DEMO_DIR = path.join(ROOT, 'data', 'demo');

const { values } = parseArgs({
  options: {
    target: { type: 'string' },
    path: { type: 'string', multiple: true },
    port: { type: 'string', default: '8080' },
  },
});

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer().once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function start(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

async function waitForLine(
  child: ChildProcess,
  pattern: RegExp,
  what: string,
): Promise<RegExpExecArray> {
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = pattern.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.once('exit', (code) => reject(new Error(`${what}: the process exited with ${code}`)));
  });
}

async function main(): Promise<void> {
  rmSync(DEMO_DIR, { recursive: true, force: true });
  mkdirSync(DEMO_DIR, { recursive: true });
  const children: ChildProcess[] = [];
  const sample = values.target ? undefined : await startSampleApi();
  try {
    let port = Number(values.port);
    if (!(await portFree(port))) {
      say(`Port ${port} is busy; the control plane takes a free port instead.`);
      port = 0;
    }
    say('1. Starting the control plane (HTTP API and agent channel) ...');
    const cpDir = path.join(DEMO_DIR, 'control-plane');
    const cp = start([CP_CLI, 'start', '--port', String(port), '--data-dir', cpDir], {
      OUTPOST_LOG_LEVEL: 'warn',
    });
    children.push(cp);
    cp.stderr!.on('data', (d: Buffer) =>
      process.stderr.write(`   [control-plane] ${d.toString()}`),
    );
    const base = (await waitForLine(cp, /Listening on (http:\/\/\S+)/, 'the control plane'))[1]!;
    const key = readFileSync(path.join(cpDir, 'admin-api-key'), 'utf8').trim();
    say(
      `   control plane at ${base}; admin API key in ${path.relative(ROOT, cpDir)}/admin-api-key`,
    );
    const api = async (method: string, p: string, body?: unknown) => {
      const res = await fetch(`${base}${p}`, {
        method,
        headers: {
          authorization: `Bearer ${key}`,
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
      });
      const json = (await res.json()) as Record<string, any>;
      if (res.status >= 400)
        throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    };

    const targetUrl = values.target ?? sample!.url;
    if (sample) say(`2. Started the sample internal API at ${sample.url} (Basic auth required).`);
    else say(`2. Using your target ${targetUrl}.`);

    say('3. Creating a terminal and enrolling an agent (as its own process) ...');
    const terminal = await api('POST', '/v1/terminals', { name: 'demo-site' });
    const agentDir = path.join(DEMO_DIR, 'agent');
    const enrolled = spawnSync(
      process.execPath,
      [
        AGENT_CLI,
        'enroll',
        '--url',
        base,
        '--token',
        terminal.enrollmentToken,
        '--data-dir',
        agentDir,
      ],
      { encoding: 'utf8' },
    );
    if (enrolled.status !== 0) throw new Error(`enroll failed: ${enrolled.stderr}`);
    say(enrolled.stdout.trimEnd().replace(/^/gm, '   '));
    const agent = start([AGENT_CLI, 'run', '--data-dir', agentDir, '--log-format', 'json'], {
      OUTPOST_LOG_LEVEL: 'warn',
    });
    children.push(agent);
    agent.stdout!.resume();
    for (let i = 0; i < 100; i++) {
      if ((await api('GET', `/v1/terminals/${terminal.id}`)).status === 'online') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    say(`   terminal ${terminal.id} is online`);

    say('4. Binding an account to the terminal (secrets are sealed to the terminal key) ...');
    const user = values.target ? process.env.OUTPOST_DEMO_USERNAME : SAMPLE_USER;
    const password = values.target ? process.env.OUTPOST_DEMO_PASSWORD : SAMPLE_PASSWORD;
    const account = await api('POST', '/v1/accounts', {
      name: values.target ? 'your api' : 'warehouse api',
      authType: user ? 'basic' : 'none',
      host: targetUrl,
      terminalId: terminal.id,
      ...(user ? { secrets: { username: user, password: password ?? '' } } : {}),
    });
    say(
      `   account ${account.id} [${account.authType}] secret fields set: ${account.secretFields.join(', ') || 'none'}`,
    );
    await new Promise((r) => setTimeout(r, 300));

    say('5. Running jobs through the terminal:');
    const requests: Array<Record<string, unknown>> = values.target
      ? (values.path ?? ['/']).map((p) => ({ method: 'GET', path: p }))
      : [
          { method: 'GET', path: '/api/inventory' },
          { method: 'GET', path: '/api/inventory/BOLT-M8' },
          { method: 'POST', path: '/api/orders', body: { sku: 'NUT-M8', quantity: 25 } },
          { method: 'GET', path: '/api/inventory/UNKNOWN' },
        ];
    for (const request of requests) {
      const started = performance.now();
      const job = await api('POST', '/v1/jobs?wait=true', { accountId: account.id, request });
      const ms = Math.round(performance.now() - started);
      const label = `${String(request.method)} ${String(request.path)}`.padEnd(32);
      if (job.state !== 'succeeded') {
        say(
          `   ${label} -> ${job.state} ${job.error?.code ?? ''} ${job.error?.message ?? ''} (${ms} ms)`,
        );
        continue;
      }
      const body = (job.response.body ?? `<${job.bodyBytes} bytes>`) as string;
      say(
        `   ${label} -> ${job.response.status} in ${ms} ms  ${body.length > 90 ? `${body.slice(0, 90)}...` : body}`,
      );
    }

    say('6. terminal-agent status:');
    const status = spawnSync(process.execPath, [AGENT_CLI, 'status', '--data-dir', agentDir], {
      encoding: 'utf8',
    });
    say(status.stdout.trimEnd().replace(/^/gm, '   '));

    say('7. Stopping everything ...');
  } finally {
    for (const child of children.reverse()) {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    }
    sample?.server.close();
  }
  say('Done. Everything ran on this machine; the data is in data/demo/.');
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`);
  process.exit(1);
});
