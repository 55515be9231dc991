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
import { bindAccount, bodyOf, createJob, RecordingTarget, waitForAll } from './fault-kit.js';

/** The answer to /slow/N: big enough to take several body frames. */
function answerOf(path: string): string {
  return `${path};`.repeat(40_000);
}

describe('a control plane restarted while jobs run through a terminal', () => {
  let cp: ControlPlaneProc;
  let agent: AgentProc;
  let target: RecordingTarget;
  let terminalId: string;
  let dataDir: string;
  let accountId: string;
  let port: number;

  beforeAll(async () => {
    // Answers come after 1.5 s, so the control plane goes down while the target holds them.
    target = await new RecordingTarget((req, res) => {
      setTimeout(() => res.end(answerOf(req.url!)), 1500);
    }).start();
    cp = await startControlPlane();
    port = Number(new URL(cp.url).port);
    ({ terminalId, dataDir } = await createAndEnroll(cp, 'steady-site'));
    agent = await startAgent(cp, terminalId, dataDir);
    accountId = await bindAccount(cp.api, terminalId, target.url);
  });

  afterAll(async () => {
    await agent?.stop();
    await cp?.stop();
    await target?.stop();
    cleanup(dataDir, cp.dataDir);
  });

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`loses none of them when it is stopped with ${signal}`, async () => {
      const paths = Array.from({ length: 12 }, (_, i) => `/slow/${signal}/${i}`);
      const ids: string[] = [];
      for (const p of paths) ids.push(await createJob(cp.api, accountId, p));
      await waitFor('the target to see the first jobs', () =>
        target.hits.some((h) => h.path.startsWith(`/slow/${signal}/`)) ? true : undefined,
      );

      await cp.stop(signal);
      cp = await startControlPlane({ dataDir: cp.dataDir, port });
      const jobs = await waitForAll(cp.api, ids);

      for (const [i, id] of ids.entries()) {
        expect({ path: paths[i], state: jobs.get(id).state }).toEqual({
          path: paths[i],
          state: 'succeeded',
        });
        expect(await bodyOf(cp.api, id)).toBe(answerOf(paths[i]!));
        expect(target.hitsOf(paths[i]!)).toHaveLength(1);
      }
    });
  }
});
