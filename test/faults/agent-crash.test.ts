import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  cleanup,
  createAndEnroll,
  startAgent,
  startControlPlane,
  waitFor,
  waitForJob,
  type AgentProc,
  type ControlPlaneProc,
} from '../helpers/processes.js';
import { bindAccount, bodyOf, createJob, RecordingTarget } from './fault-kit.js';

describe('an agent killed with SIGKILL in the middle of a job', () => {
  let cp: ControlPlaneProc;
  let agent: AgentProc;
  let target: RecordingTarget;
  let terminalId: string;
  let dataDir: string;
  let accountId: string;

  beforeAll(async () => {
    // The target never answers /hold/*: the request is in the target's hands when the agent dies.
    target = await new RecordingTarget((req, res) => {
      if (req.url!.startsWith('/hold/')) return false;
      res.end(`answer to ${req.url}`);
    }).start();
    cp = await startControlPlane();
    ({ terminalId, dataDir } = await createAndEnroll(cp, 'crashing-site'));
    agent = await startAgent(cp, terminalId, dataDir);
    accountId = await bindAccount(cp.api, terminalId, target.url);
  });

  afterAll(async () => {
    await agent?.stop('SIGKILL');
    await cp?.stop();
    await target?.stop();
    cleanup(dataDir, cp.dataDir);
  });

  it('ends the job failed AGENT_LOST_JOB after a restart, and the target saw it once', async () => {
    const jobId = await createJob(cp.api, accountId, '/hold/crash');
    await target.sawRequest('/hold/crash');

    await agent.stop('SIGKILL');
    agent = await startAgent(cp, terminalId, dataDir);
    const job = await waitForJob(cp.api, jobId);

    expect(job.state).toBe('failed');
    expect(job.error.code).toBe('AGENT_LOST_JOB');
    expect(job.error.message).toBe(
      'the terminal stopped while this job ran; it was not run again to avoid running it twice',
    );
    expect(target.hitsOf('/hold/crash')).toHaveLength(1);
  });

  it('runs the next job normally on the restarted agent', async () => {
    const jobId = await createJob(cp.api, accountId, '/after-crash');
    const job = await waitForJob(cp.api, jobId);

    expect(job.state).toBe('succeeded');
    expect(await bodyOf(cp.api, jobId)).toBe('answer to /after-crash');
    expect(target.hitsOf('/hold/crash')).toHaveLength(1);
  });

  it('aborts the request on the agent when the job is cancelled through the API', async () => {
    const jobId = await createJob(cp.api, accountId, '/hold/cancel');
    const hit = await target.sawRequest('/hold/cancel');

    const cancelled = await cp.api.call('POST', `/v1/jobs/${jobId}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.state).toBe('cancelled');

    await waitFor('the target to see its connection closed', () =>
      hit.abortedEarly ? true : undefined,
    );
    const job = await waitForJob(cp.api, jobId);
    expect(job.state).toBe('cancelled');
    expect(job.error.code).toBe('CANCELLED');
    expect(target.hitsOf('/hold/cancel')).toHaveLength(1);
  });
});
