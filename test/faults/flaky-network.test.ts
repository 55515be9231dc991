import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  cleanup,
  startAgent,
  startControlPlane,
  tempDir,
  type AgentProc,
  type ControlPlaneProc,
} from '../helpers/processes.js';
import {
  agentCommandAsync,
  bindAccount,
  bodyOf,
  createJob,
  CuttingRelay,
  RecordingTarget,
  waitForAll,
} from './fault-kit.js';

const JOBS = 300;

/** The answer to /n/N: every tenth one spans several body frames. */
function answerOf(n: number): string {
  return `answer ${n};`.repeat(n % 10 === 0 ? 40_000 : 50);
}

describe('a terminal behind a network that cuts every connection every 1-2 seconds', () => {
  let cp: ControlPlaneProc;
  let relay: CuttingRelay;
  let agent: AgentProc;
  let target: RecordingTarget;
  let terminalId: string;
  const dataDir = tempDir('flaky-agent');
  let accountId: string;

  beforeAll(async () => {
    target = await new RecordingTarget((req, res) => {
      const n = Number(req.url!.split('/')[2]);
      setTimeout(() => res.end(answerOf(n)), 5 + (n % 7) * 10);
    }).start();
    cp = await startControlPlane();
    relay = await new CuttingRelay(Number(new URL(cp.url).port)).start();
    const created = await cp.api.call('POST', '/v1/terminals', { name: 'flaky-site' });
    terminalId = created.body.id;
    // The agent knows the control plane only through the relay.
    const enrolled = await agentCommandAsync([
      'enroll',
      '--url',
      `http://127.0.0.1:${relay.port}`,
      '--token',
      created.body.enrollmentToken,
      '--data-dir',
      dataDir,
    ]);
    expect(enrolled.code).toBe(0);
    agent = await startAgent(cp, terminalId, dataDir);
    accountId = await bindAccount(cp.api, terminalId, target.url);
    const patched = await cp.api.call('PATCH', `/v1/terminals/${terminalId}`, {
      maxConcurrency: 8,
    });
    expect(patched.status).toBe(200);
  });

  afterAll(async () => {
    await agent?.stop();
    await relay?.stop();
    await cp?.stop();
    await target?.stop();
    cleanup(dataDir, cp.dataDir);
  });

  it(`ends each of ${JOBS} jobs exactly once, and the target sees each once`, async () => {
    relay.cutEvery(1000, 2000);
    const ids: string[] = [];
    for (let n = 0; n < JOBS; n++) ids.push(await createJob(cp.api, accountId, `/n/${n}`));
    const jobs = await waitForAll(cp.api, ids, 90_000);
    relay.stopCutting();

    expect(relay.cuts).toBeGreaterThan(0);
    const states = new Map<string, number>();
    for (const job of jobs.values()) states.set(job.state, (states.get(job.state) ?? 0) + 1);
    expect(Object.fromEntries(states)).toEqual({ succeeded: JOBS });
    for (let n = 0; n < JOBS; n++) expect(target.hitsOf(`/n/${n}`)).toHaveLength(1);
    expect(target.hits).toHaveLength(JOBS);
    for (let n = 0; n < JOBS; n++) expect(await bodyOf(cp.api, ids[n]!)).toBe(answerOf(n));
  });

  it('never closed the connection for a protocol error along the way', () => {
    const closes = (cp.stderr() + cp.stdout())
      .split('\n')
      .filter((line) => line.includes('closing agent connection'));
    expect(closes).toEqual([]);
  });
});
