import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  createAndEnroll,
  startAgent,
  startControlPlane,
  waitForJob,
  type AgentProc,
  type ControlPlaneProc,
} from '../helpers/processes.js';

describe('jobs whose deadline passes while they wait', () => {
  let cp: ControlPlaneProc;
  let agent: AgentProc;
  let target: Server;
  let url: string;
  const hits: string[] = [];

  beforeAll(async () => {
    target = createServer((req, res) => {
      hits.push(req.url!);
      // Answers after 1.5 s: past the deadlines of the jobs that wait behind the first.
      setTimeout(() => res.end('late'), 1500).unref();
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
    cp = await startControlPlane();
    const { terminalId, dataDir } = await createAndEnroll(cp, 'deadlines');
    agent = await startAgent(cp, terminalId, dataDir);
    await cp.api.call('PATCH', `/v1/terminals/${terminalId}`, { maxConcurrency: 1 });
  });

  afterAll(async () => {
    await agent?.stop();
    await cp?.stop();
    target?.closeAllConnections();
    target?.close();
  });

  it('never sends them to the target: they end timed out in the queue', async () => {
    const account = await cp.api.call('POST', '/v1/accounts', {
      name: 'slow',
      authType: 'none',
      host: url,
      terminalId: agent.terminalId,
    });
    const ids: string[] = [];
    // The first job holds the only slot for 1.5 s; the others' deadlines pass while they wait.
    for (const [n, timeoutMs] of [
      [1, 5000],
      [2, 600],
      [3, 900],
    ]) {
      const job = await cp.api.call('POST', '/v1/jobs', {
        accountId: account.body.id,
        request: { method: 'POST', path: `/job-${n}` },
        timeoutMs,
      });
      ids.push(job.body.id);
    }
    const ended = await Promise.all(ids.map((id) => waitForJob(cp.api, id)));
    expect(ended.map((j) => [j.state, j.error?.code ?? null])).toEqual([
      ['succeeded', null],
      ['timed_out', 'TIMEOUT_QUEUED'],
      ['timed_out', 'TIMEOUT_QUEUED'],
    ]);
    // Give a late dispatch every chance to show itself before counting.
    await new Promise((r) => setTimeout(r, 500));
    expect(hits).toEqual(['/job-1']);
  });
});
