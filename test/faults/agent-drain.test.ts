import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  cleanup,
  createAndEnroll,
  startAgent,
  startControlPlane,
  waitForJob,
  type ControlPlaneProc,
} from '../helpers/processes.js';
import { bindAccount, bodyOf, createJob, RecordingTarget } from './fault-kit.js';

describe('SIGTERM to an agent while a job runs', () => {
  let cp: ControlPlaneProc;
  let target: RecordingTarget;
  let terminalId: string;
  let dataDir: string;
  let accountId: string;

  beforeAll(async () => {
    // /slow answers after 1 s; /hold never answers.
    target = await new RecordingTarget((req, res) => {
      if (req.url === '/hold') return false;
      setTimeout(() => res.end('slow but whole'), 1000);
    }).start();
    cp = await startControlPlane();
    ({ terminalId, dataDir } = await createAndEnroll(cp, 'draining-site'));
    accountId = await bindAccount(cp.api, terminalId, target.url);
  });

  afterAll(async () => {
    await cp?.stop();
    await target?.stop();
    cleanup(dataDir, cp.dataDir);
  });

  it('lets a job that ends within --drain-seconds finish, and the job succeeds', async () => {
    const agent = await startAgent(cp, terminalId, dataDir, ['--drain-seconds', '5']);
    const jobId = await createJob(cp.api, accountId, '/slow');
    await target.sawRequest('/slow');

    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);

    const job = await waitForJob(cp.api, jobId);
    expect(job.state).toBe('succeeded');
    expect(await bodyOf(cp.api, jobId)).toBe('slow but whole');
  });

  it('ends a job that outlasts the drain failed AGENT_SHUTDOWN, once', async () => {
    const agent = await startAgent(cp, terminalId, dataDir, ['--drain-seconds', '1']);
    const jobId = await createJob(cp.api, accountId, '/hold');
    await target.sawRequest('/hold');

    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);

    const job = await waitForJob(cp.api, jobId);
    expect(job.state).toBe('failed');
    expect(job.error.code).toBe('AGENT_SHUTDOWN');
    expect(target.hitsOf('/hold')).toHaveLength(1);
  });
});
