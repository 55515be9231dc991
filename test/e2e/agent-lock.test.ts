import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  agentCommand,
  createAndEnroll,
  startAgent,
  startControlPlane,
  type AgentProc,
  type ControlPlaneProc,
} from '../helpers/processes.js';

describe('one agent per data dir', () => {
  let cp: ControlPlaneProc;
  let agent: AgentProc;

  beforeAll(async () => {
    cp = await startControlPlane();
    const { terminalId, dataDir } = await createAndEnroll(cp, 'single');
    agent = await startAgent(cp, terminalId, dataDir);
  });

  afterAll(async () => {
    await agent?.stop();
    await cp?.stop();
  });

  it('refuses a second agent on the same data dir, and the first keeps its connection and status', async () => {
    const second = agentCommand(['run', '--data-dir', agent.dataDir]);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(
      `error CONFLICT: another terminal-agent (pid ${agent.child.pid}) is already running`,
    );
    const status = agentCommand(['status', '--json', '--data-dir', agent.dataDir]);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ connected: true, pid: agent.child.pid });
    expect((await cp.api.call('GET', `/v1/terminals/${agent.terminalId}`)).body.status).toBe(
      'online',
    );
  });
});
