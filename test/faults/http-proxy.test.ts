import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { createProxy, type ProxyServer } from 'proxy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  cleanup,
  createAndEnroll,
  startAgent,
  startControlPlane,
  waitForJob,
  type AgentProc,
  type ControlPlaneProc,
} from '../helpers/processes.js';
import { bindAccount, bodyOf, createJob, RecordingTarget } from './fault-kit.js';

const PROXY_AUTH = `Basic ${Buffer.from('proxyuser:proxy pass').toString('base64')}`;

describe('an agent that reaches the control plane through an HTTP proxy', () => {
  let cp: ControlPlaneProc;
  let proxy: ProxyServer;
  let proxyPort: number;
  let target: RecordingTarget;
  let terminalId: string;
  let dataDir: string;
  let accountId: string;
  const connects: Array<{ url: string; authorized: boolean }> = [];
  let agent: AgentProc | undefined;

  beforeAll(async () => {
    target = await new RecordingTarget((req, res) => void res.end(`via proxy: ${req.url}`)).start();
    proxy = createProxy(createServer());
    proxy.authenticate = (req) => req.headers['proxy-authorization'] === PROXY_AUTH;
    proxy.on('connect', (req) =>
      connects.push({
        url: req.url!,
        authorized: req.headers['proxy-authorization'] === PROXY_AUTH,
      }),
    );
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    proxyPort = (proxy.address() as AddressInfo).port;
    cp = await startControlPlane();
    ({ terminalId, dataDir } = await createAndEnroll(cp, 'proxied-site'));
    accountId = await bindAccount(cp.api, terminalId, target.url);
  });

  afterAll(async () => {
    await agent?.stop();
    await cp?.stop();
    proxy?.closeAllConnections();
    await new Promise((r) => proxy?.close(r));
    await target?.stop();
    cleanup(dataDir, cp.dataDir);
  });

  async function runsAJob(path: string): Promise<void> {
    const jobId = await createJob(cp.api, accountId, path);
    const job = await waitForJob(cp.api, jobId);
    expect(job.state).toBe('succeeded');
    expect(await bodyOf(cp.api, jobId)).toBe(`via proxy: ${path}`);
  }

  it('tunnels with CONNECT and proxy credentials given with --proxy', async () => {
    const cpHost = new URL(cp.url).host;
    agent = await startAgent(cp, terminalId, dataDir, [
      '--proxy',
      `http://proxyuser:proxy%20pass@127.0.0.1:${proxyPort}`,
    ]);
    await runsAJob('/flag');

    expect(connects).toEqual([{ url: cpHost, authorized: true }]);
    await agent.stop();
  });

  it('tunnels the same way with HTTPS_PROXY from the environment', async () => {
    agent = await startAgent(cp, terminalId, dataDir, [], {
      HTTPS_PROXY: `http://proxyuser:proxy%20pass@127.0.0.1:${proxyPort}`,
      NO_PROXY: 'internal.example',
    });
    await runsAJob('/env');

    expect(connects).toHaveLength(2);
    expect(connects[1]).toEqual({ url: new URL(cp.url).host, authorized: true });
    await agent.stop();
  });

  it('goes direct when NO_PROXY names the control plane host', async () => {
    agent = await startAgent(cp, terminalId, dataDir, [], {
      HTTPS_PROXY: `http://proxyuser:proxy%20pass@127.0.0.1:${proxyPort}`,
      NO_PROXY: 'internal.example,127.0.0.1',
    });
    await runsAJob('/direct');

    expect(connects).toHaveLength(2);
    await agent.stop();
  });
});
