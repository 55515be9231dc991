/**
 * A 1 GB answer through a terminal: the target streams it, the agent uploads it under credit,
 * the control plane spools it and streams it to the API caller from `GET /v1/jobs/:id/body`.
 * Measures the rate end to end and how far the resident memory of both processes grows.
 */
import { request } from 'undici';

import { startBenchAgent, startBenchControlPlane } from './bench-processes.js';
import { startTarget } from './bench-target.js';
import { RssSampler, settledRss, statusBytes } from './process-memory.js';

/** What the stream benchmark measured (bytes and seconds). */
export interface StreamResults {
  bytes: number;
  seconds: number;
  bytesPerSecond: number;
  controlPlane: { baseline: number; peakSampled: number; hwm: number };
  agent: { baseline: number; peakSampled: number; hwm: number };
}

/** Streams `bytes` through fresh processes and measures. */
export async function streamBench(bytes: number): Promise<StreamResults> {
  const target = await startTarget();
  const cp = await startBenchControlPlane();
  const agent = await startBenchAgent(cp);
  try {
    const account = await cp.call('POST', '/v1/accounts', {
      name: 'bench stream',
      authType: 'none',
      host: target.url,
      terminalId: agent.terminalId,
    });
    if (account.status !== 201) throw new Error(`account: ${JSON.stringify(account.body)}`);
    const [cpBase, agentBase] = await Promise.all([
      settledRss(cp.pid, 1000),
      settledRss(agent.pid, 1000),
    ]);
    const sampler = new RssSampler([cp.pid, agent.pid]);
    const t0 = performance.now();
    const created = await cp.call('POST', '/v1/jobs', {
      accountId: account.body.id,
      request: { method: 'GET', path: `/bytes/${bytes}` },
      timeoutMs: 600_000,
    });
    if (created.status !== 202) throw new Error(`job: ${JSON.stringify(created.body)}`);
    const res = await request(`${cp.url}/v1/jobs/${created.body.id}/body`, {
      headers: { authorization: `Bearer ${cp.adminKey}` },
      headersTimeout: 120_000,
      bodyTimeout: 120_000,
    });
    let received = 0;
    for await (const chunk of res.body) received += (chunk as Buffer).length;
    const seconds = (performance.now() - t0) / 1000;
    const peaks = sampler.stop();
    const job = await cp.call('GET', `/v1/jobs/${created.body.id}`);
    if (res.statusCode !== 200 || received !== bytes || job.body.state !== 'succeeded') {
      throw new Error(
        `stream ended badly: ${res.statusCode}, ${received} bytes, ${job.body.state}`,
      );
    }
    return {
      bytes,
      seconds,
      bytesPerSecond: bytes / seconds,
      controlPlane: {
        baseline: cpBase,
        peakSampled: peaks.get(cp.pid) ?? NaN,
        hwm: statusBytes(cp.pid, 'VmHWM'),
      },
      agent: {
        baseline: agentBase,
        peakSampled: peaks.get(agent.pid) ?? NaN,
        hwm: statusBytes(agent.pid, 'VmHWM'),
      },
    };
  } finally {
    await agent.stop();
    await cp.stop();
    await target.stop();
  }
}
