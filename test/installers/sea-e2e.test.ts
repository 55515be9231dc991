/**
 * The real terminal agent as a single executable, end to end: `npm run package` from this
 * checkout, then the executable's commands. Heavy (a full build and a ~100 MB file), so it runs
 * in CI (CI=true) or when OUTPOST_SEA_E2E=1; elsewhere it is skipped.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { PRODUCT_VERSION } from '../../shared/version.js';
import { startControlPlane, waitFor } from '../helpers/processes.js';

const root = resolve(import.meta.dirname, '..', '..');
const executable = join(root, 'dist', 'sea', 'terminal-agent');
// Also needs the agent's CLI, written alongside these installers; without it there is nothing
// to package yet.
const wanted =
  (process.env.CI === 'true' || process.env.OUTPOST_SEA_E2E === '1') &&
  existsSync(join(root, 'agent', 'cli.ts'));

/** A loopback API that answers only the Basic credentials `sea:pa55word`, echoing the request. */
async function startBasicAuthTarget(): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const expected = `Basic ${Buffer.from('sea:pa55word').toString('base64')}`;
    if (req.headers.authorization !== expected) {
      res.writeHead(401, { 'www-authenticate': 'Basic' }).end('unauthorized');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'x-served-by': 'sea-target' });
    res.end(JSON.stringify({ method: req.method, url: req.url }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/**
 * Enrolls the executable against a control plane started on 127.0.0.1, runs it, has it complete
 * one Basic-auth job against a loopback API, and checks that its own `status` says connected.
 */
async function enrollAndCompleteOneJob(agent: string, workDir: string): Promise<void> {
  const cp = await startControlPlane({ dataDir: join(workDir, 'control-plane') });
  const target = await startBasicAuthTarget();
  const dataDir = join(workDir, 'agent-data');
  let run: ChildProcess | undefined;
  try {
    const terminal = await cp.api.call('POST', '/v1/terminals', { name: 'sea-site' });
    expect(terminal.status).toBe(201);

    const enrolled = spawnSync(
      agent,
      ['enroll', '--url', cp.url, '--data-dir', dataDir, '--name', 'sea-site'],
      {
        encoding: 'utf8',
        env: { ...process.env, OUTPOST_ENROLLMENT_TOKEN: terminal.body.enrollmentToken },
      },
    );
    expect(enrolled.stderr).toBe('');
    expect(enrolled.stdout).toBe(
      `Enrolled as terminal ${terminal.body.id} (sea-site).\nData dir: ${dataDir}\n`,
    );
    expect(enrolled.status).toBe(0);

    const running = spawn(agent, ['run', '--data-dir', dataDir, '--log-format', 'json'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    run = running;
    let runStderr = '';
    running.stderr.on('data', (d: Buffer) => (runStderr += d.toString()));
    await waitFor('the packaged agent to come online', async () => {
      if (running.exitCode !== null) throw new Error(`the agent exited: ${runStderr}`);
      const t = await cp.api.call('GET', `/v1/terminals/${terminal.body.id}`);
      return t.body.status === 'online' ? true : undefined;
    });

    const account = await cp.api.call('POST', '/v1/accounts', {
      name: 'sea api',
      authType: 'basic',
      host: target.url,
      terminalId: terminal.body.id,
      secrets: { username: 'sea', password: 'pa55word' },
    });
    expect(account.status).toBe(201);

    const job = await cp.api.call('POST', '/v1/jobs?wait=true', {
      accountId: account.body.id,
      request: { method: 'GET', path: '/inventory', query: { site: 'a b' } },
    });

    expect(job.status).toBe(200);
    expect(job.body.state).toBe('succeeded');
    expect(job.body.error).toBeNull();
    expect(job.body.response.status).toBe(200);
    expect(job.body.response.headers['x-served-by']).toBe('sea-target');
    expect(job.body.response.body).toBe('{"method":"GET","url":"/inventory?site=a%20b"}');

    const status = spawnSync(agent, ['status', '--json', '--data-dir', dataDir], {
      encoding: 'utf8',
    });
    expect(status.stderr).toBe('');
    expect(status.status).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({
      enrolled: true,
      terminalId: terminal.body.id,
      controlPlaneUrl: cp.url,
      connected: true,
      running: true,
      pid: running.pid,
    });
    expect(runStderr).toBe('');
  } finally {
    if (run && run.exitCode === null) {
      const exited = new Promise((r) => run!.once('exit', r));
      run.kill('SIGTERM');
      await exited;
    }
    await cp.stop();
    target.server.close();
  }
}

describe.runIf(wanted)('the packaged terminal agent', () => {
  let work: string;

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'outpost-sea-e2e-'));
    const built = spawnSync('npm', ['run', 'package'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 600_000,
    });
    if (built.status !== 0)
      throw new Error(`npm run package failed:\n${built.stdout}${built.stderr}`);
  }, 660_000);

  afterAll(() => {
    rmSync(work, { recursive: true, force: true });
  });

  it('is built at dist/sea/terminal-agent', () => {
    expect(existsSync(executable)).toBe(true);
  });

  it('prints the product version', () => {
    const result = spawnSync(executable, ['--version'], { encoding: 'utf8' });

    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe(PRODUCT_VERSION);
    expect(result.status).toBe(0);
  });

  it('reports a fresh data dir as not enrolled (status exits 2)', () => {
    const result = spawnSync(executable, ['status', '--data-dir', join(work, 'fresh')], {
      encoding: 'utf8',
    });

    expect(result.status).toBe(2);
  });

  it('enrolls against a test control plane and completes one job', async () => {
    await enrollAndCompleteOneJob(executable, work);
  }, 60_000);
});
