/**
 * The agent's log file: JSON lines in DATA_DIR/logs/agent.log, the level set by --log-level, and
 * never a secret, checked on a real agent process that runs Basic-auth jobs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  cleanup,
  createAndEnroll,
  startAgent,
  startControlPlane,
  waitFor,
  type AgentProc,
  type ControlPlaneProc,
} from '../helpers/processes.js';

const PASSWORD = 'log-file-s3cret-9f27';

describe('the log file of a running agent', () => {
  let cp: ControlPlaneProc;
  let agent: AgentProc | undefined;
  let target: Server;
  let targetUrl: string;
  let terminalId: string;
  let dataDir: string;
  let logFile: string;

  function lines(): Array<Record<string, unknown>> {
    if (!existsSync(logFile)) return [];
    const text = readFileSync(logFile, 'utf8');
    return text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  beforeAll(async () => {
    target = createServer((req, res) => res.end(JSON.stringify({ url: req.url })));
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    targetUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
    cp = await startControlPlane();
    ({ terminalId, dataDir } = await createAndEnroll(cp, 'logs-site'));
    logFile = join(dataDir, 'logs', 'agent.log');
  });

  afterAll(async () => {
    await agent?.stop();
    await cp?.stop();
    target?.close();
    cleanup(...[dataDir, cp?.dataDir].filter((d) => d !== undefined));
  });

  it('is written as JSON lines at info level by default, without debug lines', async () => {
    agent = await startAgent(cp, terminalId, dataDir);
    await waitFor('the connected line in the file', () =>
      lines().some((l) => l.message === 'connected to the control plane') ? true : undefined,
    );
    await agent.stop();

    const all = lines();
    expect(all.find((l) => l.message === 'agent started')).toMatchObject({
      level: 'info',
      component: 'agent',
      terminalId,
      version: '0.1.0',
    });
    expect(all.every((l) => typeof l.timestamp === 'string')).toBe(true);
    expect(all.filter((l) => l.level === 'debug')).toEqual([]);
  });

  it('gains debug lines with --log-level debug, and never holds the secret of a job', async () => {
    agent = await startAgent(cp, terminalId, dataDir, ['--log-level', 'debug']);
    const account = await cp.api.call('POST', '/v1/accounts', {
      name: 'logged api',
      authType: 'basic',
      host: targetUrl,
      terminalId,
      secrets: { username: 'logger', password: PASSWORD },
    });
    expect(account.status).toBe(201);

    // The secret is also in the job's own path, where a careless log line would show it.
    const job = await cp.api.call('POST', '/v1/jobs?wait=true', {
      accountId: account.body.id,
      request: { method: 'GET', path: `/items/${PASSWORD}` },
    });
    expect(job.body.state).toBe('succeeded');
    await waitFor('the job lines in the file', () =>
      lines().some((l) => l.message === 'running job') ? true : undefined,
    );
    await agent.stop();
    agent = undefined;

    const text = readFileSync(logFile, 'utf8');
    expect(
      lines()
        .filter((l) => l.level === 'debug')
        .map((l) => l.message),
    ).toContain('running job');
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(Buffer.from(PASSWORD).toString('base64'));
    expect(text).not.toContain(Buffer.from(`logger:${PASSWORD}`).toString('base64'));
  });
});
