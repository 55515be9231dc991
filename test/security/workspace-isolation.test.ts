import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  ApiClient,
  cleanup,
  controlPlaneCommand,
  createAndEnroll,
  startAgent,
  startControlPlane,
  type AgentProc,
  type ControlPlaneProc,
} from '../helpers/processes.js';
import { recordingServer, type RecordingServer } from './security-fixtures.js';

describe('a second workspace aiming at the first one’s objects', () => {
  let cp: ControlPlaneProc;
  let agent: AgentProc;
  let dataDir: string;
  let target: RecordingServer;
  let other: ApiClient;
  const ids = { terminal: '', account: '', direct: '', job: '' };

  beforeAll(async () => {
    target = await recordingServer();
    cp = await startControlPlane();
    const enrolled = await createAndEnroll(cp, 'owner-site');
    ids.terminal = enrolled.terminalId;
    dataDir = enrolled.dataDir;
    agent = await startAgent(cp, ids.terminal, dataDir);
    const bound = await cp.api.call('POST', '/v1/accounts', {
      name: 'owner-bound',
      authType: 'bearer',
      host: target.url,
      terminalId: ids.terminal,
      secrets: { token: 'owner-token' },
    });
    ids.account = bound.body.id;
    const direct = await cp.api.call('POST', '/v1/accounts', {
      name: 'owner-direct',
      authType: 'basic',
      host: target.url,
      secrets: { username: 'owner', password: 'owner-password' },
    });
    expect(direct.status).toBe(201);
    ids.direct = direct.body.id;
    const job = await cp.api.call('POST', '/v1/jobs?wait=true', {
      accountId: ids.account,
      request: { method: 'GET', path: '/owner' },
    });
    ids.job = job.body.id;
    const key = controlPlaneCommand([
      'keys',
      'create',
      '--workspace',
      'other',
      '--data-dir',
      cp.dataDir,
    ]);
    expect(key.code).toBe(0);
    other = cp.api.withKey(key.stdout.trim());
  });

  afterAll(async () => {
    await agent?.stop();
    await cp?.stop();
    await target?.close();
    cleanup(cp.dataDir, dataDir);
  });

  it('gets 404 NOT_FOUND from every endpoint that names one of them', async () => {
    const { terminal, account, job } = ids;
    const attempts: Array<[string, string, unknown?]> = [
      ['GET', `/v1/terminals/${terminal}`],
      ['PATCH', `/v1/terminals/${terminal}`, { name: 'stolen', maxConcurrency: 1 }],
      ['DELETE', `/v1/terminals/${terminal}`],
      ['POST', `/v1/terminals/${terminal}/test`],
      ['GET', `/v1/terminals/${terminal}/logs`],
      ['GET', `/v1/accounts/${account}`],
      ['PATCH', `/v1/accounts/${account}`, { name: 'stolen', host: 'http://127.0.0.1:9' }],
      ['DELETE', `/v1/accounts/${account}`],
      ['POST', `/v1/accounts/${account}/test`],
      ['GET', `/v1/jobs/${job}`],
      ['GET', `/v1/jobs/${job}/body`],
      ['POST', `/v1/jobs/${job}/cancel`],
      ['POST', '/v1/jobs', { accountId: account, request: { method: 'GET', path: '/x' } }],
      ['POST', '/v1/jobs?wait=true', { accountId: account, request: { method: 'GET' } }],
      [
        'POST',
        '/v1/accounts',
        {
          name: 'borrowed terminal',
          authType: 'bearer',
          host: target.url,
          terminalId: terminal,
          secrets: { token: 'x' },
        },
      ],
      [
        'POST',
        '/v1/accounts',
        {
          name: 'borrowed certificate',
          authType: 'oauth2',
          host: target.url,
          settings: { tokenUrl: `${target.url}/token`, mtlsAccountId: ids.direct },
          secrets: { clientId: 'a', clientSecret: 'b' },
        },
      ],
    ];
    const answers: string[] = [];
    for (const [method, path, body] of attempts) {
      const res = await other.call(method, path, body);
      answers.push(`${method} ${path} ${res.status} ${res.body?.error?.code}`);
    }
    expect(answers).toEqual(attempts.map(([method, path]) => `${method} ${path} 404 NOT_FOUND`));
  });

  it('lists none of them, and sees none of the owner’s audit trail', async () => {
    for (const p of ['/v1/terminals', '/v1/accounts', '/v1/jobs', '/v1/audit']) {
      const res = await other.call('GET', p);
      expect([p, res.status, res.body.items]).toEqual([p, 200, []]);
    }
  });

  it('cannot reach the owner’s job through an idempotency key the owner used', async () => {
    const body = { accountId: ids.account, request: { method: 'GET', path: '/idem' } };
    const owner = await cp.api.call('POST', '/v1/jobs', body, { 'idempotency-key': 'same-key' });
    expect(owner.status).toBe(202);
    const res = await other.call('POST', '/v1/jobs', body, { 'idempotency-key': 'same-key' });
    expect([res.status, res.body.error.code]).toEqual([404, 'NOT_FOUND']);
  });

  it('has changed nothing the owner reads afterwards', async () => {
    const t = await cp.api.call('GET', `/v1/terminals/${ids.terminal}`);
    expect([t.body.name, t.body.status]).toEqual(['owner-site', 'online']);
    const a = await cp.api.call('GET', `/v1/accounts/${ids.account}`);
    expect([a.body.name, a.body.host, a.body.secretFields]).toEqual([
      'owner-bound',
      target.url,
      ['token'],
    ]);
    const j = await cp.api.call('GET', `/v1/jobs/${ids.job}`);
    expect([j.body.state, j.body.response.status]).toEqual(['succeeded', 200]);
    const audit = await cp.api.call('GET', '/v1/audit');
    const actions = (audit.body.items as Array<{ action: string }>).map((i) => i.action);
    expect(actions).not.toContain('terminal.revoke');
    expect(actions).not.toContain('account.delete');
    const run = await cp.api.call('POST', '/v1/jobs?wait=true', {
      accountId: ids.account,
      request: { method: 'GET', path: '/still-mine' },
    });
    expect(run.body.state).toBe('succeeded');
  });
});
