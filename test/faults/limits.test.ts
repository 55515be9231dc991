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
import { bindAccount, bodyOf, createJob, RecordingTarget, waitForAll } from './fault-kit.js';

describe('jobs for an offline terminal, and the bounded queue', () => {
  let cp: ControlPlaneProc;
  let target: RecordingTarget;
  const dirs: string[] = [];
  let agent: AgentProc | undefined;

  beforeAll(async () => {
    target = await new RecordingTarget((req, res) => void res.end(`ok ${req.url}`)).start();
    cp = await startControlPlane({ env: { OUTPOST_MAX_QUEUED_PER_TERMINAL: '3' } });
  });

  afterAll(async () => {
    await agent?.stop();
    await cp?.stop();
    await target?.stop();
    cleanup(cp.dataDir, ...dirs);
  });

  it('keeps a job queued while its terminal is offline and runs it when it connects', async () => {
    const { terminalId, dataDir } = await createAndEnroll(cp, 'late-site');
    dirs.push(dataDir);
    const accountId = await bindAccount(cp.api, terminalId, target.url);
    const jobId = await createJob(cp.api, accountId, '/waited');
    expect((await cp.api.call('GET', `/v1/jobs/${jobId}`)).body.state).toBe('queued');

    agent = await startAgent(cp, terminalId, dataDir);
    const job = await waitForJob(cp.api, jobId);

    expect(job.state).toBe('succeeded');
    expect(await bodyOf(cp.api, jobId)).toBe('ok /waited');
    expect(target.hitsOf('/waited')).toHaveLength(1);
  });

  it('ends a queued job timed_out TIMEOUT_QUEUED, saying the terminal is offline', async () => {
    const { terminalId, dataDir } = await createAndEnroll(cp, 'absent-site');
    dirs.push(dataDir);
    const accountId = await bindAccount(cp.api, terminalId, target.url);
    const jobId = await createJob(cp.api, accountId, '/never', 300);

    const job = await waitForJob(cp.api, jobId);

    expect(job.state).toBe('timed_out');
    expect(job.error).toEqual({
      code: 'TIMEOUT_QUEUED',
      message: `the job's deadline passed while it waited in the queue: terminal ${terminalId} is offline`,
    });
    expect(target.hitsOf('/never')).toEqual([]);
  });

  it('answers 429 QUEUE_FULL with Retry-After past the queue bound of a terminal', async () => {
    const { terminalId, dataDir } = await createAndEnroll(cp, 'full-site');
    dirs.push(dataDir);
    const accountId = await bindAccount(cp.api, terminalId, target.url);
    for (let i = 0; i < 3; i++) await createJob(cp.api, accountId, `/queued/${i}`);

    const refused = await cp.api.call('POST', '/v1/jobs', {
      accountId,
      request: { method: 'GET', path: '/one-too-many' },
    });

    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(refused.body.error.code).toBe('QUEUE_FULL');
    expect(refused.body.error.message).toBe(
      `terminal ${terminalId} already has 3 queued jobs; retry later`,
    );
  });
});

describe('rate limits and terminal concurrency', () => {
  let cp: ControlPlaneProc;
  let target: RecordingTarget;
  let agent: AgentProc;
  let terminalId: string;
  let dataDir: string;

  beforeAll(async () => {
    // Each answer takes 150 ms, so concurrent jobs overlap at the target.
    target = await new RecordingTarget((req, res) => {
      setTimeout(() => res.end(`ok ${req.url}`), 150);
    }).start();
    cp = await startControlPlane();
    ({ terminalId, dataDir } = await createAndEnroll(cp, 'limited-site'));
    agent = await startAgent(cp, terminalId, dataDir);
  });

  afterAll(async () => {
    await agent?.stop();
    await cp?.stop();
    await target?.stop();
    cleanup(cp.dataDir, dataDir);
  });

  it('starts jobs of an account limited to 1 request per second in order, a second apart', async () => {
    const accountId = await bindAccount(cp.api, terminalId, target.url, {
      rateLimit: { requests: 1, perSeconds: 1 },
    });
    const paths = [0, 1, 2, 3].map((i) => `/rated/${i}`);
    const ids: string[] = [];
    for (const p of paths) ids.push(await createJob(cp.api, accountId, p));

    const jobs = await waitForAll(cp.api, ids);

    expect(ids.map((id) => jobs.get(id).state)).toEqual(paths.map(() => 'succeeded'));
    const seen = target.hits.filter((h) => h.path.startsWith('/rated/'));
    expect(seen.map((h) => h.path)).toEqual(paths);
    // The window is measured where jobs are dispatched; allow for the hop to the target.
    for (let i = 1; i < seen.length; i++)
      expect(seen[i]!.at - seen[i - 1]!.at).toBeGreaterThanOrEqual(900);
  });

  it('never runs more jobs at once than the maxConcurrency set on the terminal', async () => {
    const patched = await cp.api.call('PATCH', `/v1/terminals/${terminalId}`, {
      maxConcurrency: 2,
    });
    expect(patched.status).toBe(200);
    const accountId = await bindAccount(cp.api, terminalId, target.url);
    target.peakInFlight = 0;
    const paths = Array.from({ length: 8 }, (_, i) => `/bounded/${i}`);
    const ids: string[] = [];
    for (const p of paths) ids.push(await createJob(cp.api, accountId, p));

    const jobs = await waitForAll(cp.api, ids);

    expect(ids.map((id) => jobs.get(id).state)).toEqual(paths.map(() => 'succeeded'));
    expect(target.peakInFlight).toBe(2);
    // Waiting jobs keep their order: job i+2 starts only after job i or i+1 ended.
    const order = target.hits.filter((h) => h.path.startsWith('/bounded/')).map((h) => h.path);
    expect(order).toHaveLength(8);
    for (let i = 0; i + 2 < 8; i++)
      expect(order.indexOf(paths[i]!)).toBeLessThan(order.indexOf(paths[i + 2]!));
  });
});
