import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  agentCommand,
  createAndEnroll,
  startAgent,
  startControlPlane,
  waitFor,
  type AgentProc,
  type ControlPlaneProc,
} from '../helpers/processes.js';

describe('secrets set on site, one field at a time', () => {
  let cp: ControlPlaneProc;
  let agent: AgentProc;
  let target: Server;
  let url: string;

  beforeAll(async () => {
    target = createServer((req, res) => {
      const ok =
        req.headers.authorization ===
        `Basic ${Buffer.from('site-user:site-pass-4411').toString('base64')}`;
      res.writeHead(ok ? 200 : 401, { 'content-type': 'text/plain' });
      res.end(ok ? 'welcome' : 'no');
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
    cp = await startControlPlane();
    const { terminalId, dataDir } = await createAndEnroll(cp, 'on-site');
    agent = await startAgent(cp, terminalId, dataDir);
  });

  afterAll(async () => {
    await agent?.stop();
    await cp?.stop();
    target?.close();
  });

  it('fails a job clearly until the secrets are set, then runs it with them', async () => {
    const created = await cp.api.call('POST', '/v1/accounts', {
      name: 'site-basic',
      authType: 'basic',
      host: url,
      terminalId: agent.terminalId,
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    await waitFor('the terminal to hold the account', () =>
      agentCommand(['accounts', 'list', '--json', '--data-dir', agent.dataDir]).stdout.includes(id)
        ? true
        : undefined,
    );

    const before = await cp.api.call('POST', '/v1/jobs?wait=true', {
      accountId: id,
      request: { method: 'GET', path: '/' },
    });
    expect(before.body.state).toBe('failed');
    expect(before.body.error.code).toBe('INVALID_SECRET');
    expect(before.body.error.message).toContain('terminal-agent accounts set-secret');

    const user = agentCommand(
      ['accounts', 'set-secret', id, 'username', '--data-dir', agent.dataDir],
      {},
      'site-user\n',
    );
    expect(user.code).toBe(0);
    expect(user.stdout).toContain('Set username for site-basic');
    const colon = agentCommand(
      ['accounts', 'set-secret', id, 'username', '--data-dir', agent.dataDir],
      {},
      'a:b\n',
    );
    expect(colon.code).not.toBe(0);
    expect(colon.stderr).toContain('INVALID_SECRET');
    const pass = agentCommand(
      ['accounts', 'set-secret', 'site-basic', 'password', '--data-dir', agent.dataDir],
      {},
      'site-pass-4411\n',
    );
    expect(pass.code).toBe(0);

    const list = JSON.parse(
      agentCommand(['accounts', 'list', '--json', '--data-dir', agent.dataDir]).stdout,
    );
    expect(list).toEqual([expect.objectContaining({ id, secretFields: ['password', 'username'] })]);
    const after = await cp.api.call('POST', '/v1/jobs?wait=true', {
      accountId: id,
      request: { method: 'GET', path: '/' },
    });
    expect(after.body.state).toBe('succeeded');
    expect(after.body.response.body).toBe('welcome');
  });

  it('says when a value set on site overrides the control plane, and unset-secret gives it back', async () => {
    const list0 = JSON.parse(
      agentCommand(['accounts', 'list', '--json', '--data-dir', agent.dataDir]).stdout,
    );
    const id = list0[0].id as string;
    const patched = await cp.api.call('PATCH', `/v1/accounts/${id}`, {
      secrets: { username: 'site-user', password: 'api-pass-7777' },
    });
    expect(patched.status).toBe(200);
    await waitFor('the override warning', async () => {
      const a = await cp.api.call('GET', `/v1/accounts/${id}`);
      return a.body.warnings.some((w: string) =>
        w.startsWith('secrets.password: the value set on this terminal overrides'),
      )
        ? true
        : undefined;
    });
    const local = await cp.api.call('POST', '/v1/jobs?wait=true', {
      accountId: id,
      request: { method: 'GET', path: '/' },
    });
    expect(local.body.response.status).toBe(200);

    const unset = agentCommand([
      'accounts',
      'unset-secret',
      id,
      'password',
      '--data-dir',
      agent.dataDir,
    ]);
    expect(unset.code).toBe(0);
    const cloud = await cp.api.call('POST', '/v1/jobs?wait=true', {
      accountId: id,
      request: { method: 'GET', path: '/' },
    });
    // The control plane's password applies again, and the target refuses it.
    expect(cloud.body.response.status).toBe(401);
  });
});
