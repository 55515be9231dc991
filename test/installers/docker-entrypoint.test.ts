import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..', '..');
const entrypoint = join(root, 'docker', 'entrypoint.sh');

let work: string;
let agentLog: string;
let bin: string;

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'outpost-entrypoint-test-'));
  agentLog = join(work, 'agent-calls.log');
  // A fake terminal-agent first on PATH, as the image has the real one.
  bin = join(work, 'bin');
  mkdirSync(bin);
  copyFileSync(
    join(import.meta.dirname, 'fixtures', 'fake-terminal-agent.sh'),
    join(bin, 'terminal-agent'),
  );
});

afterEach(() => {
  rmSync(work, { recursive: true, force: true });
});

/** Runs the entrypoint with sh (dash in the image) and a clean environment. */
function start(env: Record<string, string>, args: string[] = []) {
  const result = spawnSync('sh', [entrypoint, ...args], {
    encoding: 'utf8',
    env: {
      PATH: `${bin}:/usr/bin:/bin`,
      FAKE_AGENT_LOG: agentLog,
      OUTPOST_AGENT_DATA_DIR: join(work, 'data'),
      ...env,
    },
  });
  const calls = existsSync(agentLog) ? readFileSync(agentLog, 'utf8').trim().split('\n') : [];
  return { status: result.status, stderr: result.stderr, calls };
}

describe('the container entrypoint', () => {
  it('enrolls on the first start, then runs the agent without the token in its environment', () => {
    const data = join(work, 'data');

    const result = start({
      FAKE_AGENT_STATUS: '2',
      OUTPOST_CONTROL_PLANE_URL: 'http://127.0.0.1:8080',
      OUTPOST_ENROLLMENT_TOKEN: 'tok-abc',
      OUTPOST_TERMINAL_NAME: 'container-1',
    });

    expect(result.status).toBe(0);
    expect(result.calls).toEqual([
      `status|${data}|tok-abc`,
      `enroll --url http://127.0.0.1:8080 --name container-1|${data}|tok-abc`,
      `run|${data}|`,
    ]);
  });

  it('only runs the agent when the data dir is already enrolled', () => {
    const result = start({
      FAKE_AGENT_STATUS: '1',
      OUTPOST_CONTROL_PLANE_URL: 'http://127.0.0.1:8080',
      OUTPOST_ENROLLMENT_TOKEN: 'tok-abc',
    });

    expect(result.status).toBe(0);
    expect(result.calls.map((c) => c.split('|')[0])).toEqual(['status', 'run']);
  });

  it('stops with exit 2 and says what to set when not enrolled and no token is given', () => {
    const result = start({ FAKE_AGENT_STATUS: '2' });

    expect(result.status).toBe(2);
    expect(result.stderr).toContain('set OUTPOST_CONTROL_PLANE_URL and OUTPOST_ENROLLMENT_TOKEN');
    expect(result.calls.map((c) => c.split('|')[0])).toEqual(['status']);
  });

  it('defaults the data dir to the volume /var/lib/outpost-agent', () => {
    const result = start({ OUTPOST_AGENT_DATA_DIR: '' });

    expect(result.calls).toEqual(['status|/var/lib/outpost-agent|', 'run|/var/lib/outpost-agent|']);
  });

  it('runs a given terminal-agent command instead', () => {
    const result = start({}, ['status', '--json']);

    expect(result.calls).toEqual([`status --json|${join(work, 'data')}|`]);
  });
});

describe('the Dockerfile', () => {
  const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');

  it('builds in its own stage and runs as a non-root user from a slim base with a data volume', () => {
    expect(dockerfile.match(/^FROM node:20-bookworm-slim/gm)).toHaveLength(2);
    expect(dockerfile).toMatch(/^RUN npm ci$/m);
    expect(dockerfile).toMatch(/npm prune --omit=dev/);
    expect(dockerfile).toMatch(/^USER outpost-agent$/m);
    expect(dockerfile).toMatch(/^VOLUME \/var\/lib\/outpost-agent$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["\/usr\/local\/bin\/outpost-entrypoint"\]$/m);
  });
});
