/**
 * Relayed jobs against direct requests: the same target answers 1 KB, once straight from undici
 * and once through `POST /v1/jobs?wait=true` (API caller, control plane, terminal, target and
 * back), at concurrency 1 and 64.
 */
import { Pool } from 'undici';

import { startBenchAgent, startBenchControlPlane } from './bench-processes.js';
import { startTarget } from './bench-target.js';
import { runLoad, type LoadOptions, type LoadResult } from './load.js';

/** The four runs of the relay benchmark. */
export interface RelayResults {
  direct: Record<1 | 64, LoadResult>;
  relayed: Record<1 | 64, LoadResult>;
}

const CONCURRENCIES = [1, 64] as const;

function loadOptions(concurrency: number, seconds: number): LoadOptions {
  return {
    concurrency,
    warmupRequests: concurrency === 1 ? 300 : 2000,
    durationMs: seconds * 1000,
    maxRequests: 500_000,
  };
}

/** Runs the relay benchmark on fresh processes; `seconds` is the length of each run. */
export async function relayBench(seconds: number): Promise<RelayResults> {
  const target = await startTarget();
  const cp = await startBenchControlPlane();
  // Both sides allow 64 jobs at once, so that concurrency 64 is not queued behind a limit.
  const agent = await startBenchAgent(cp, ['--max-concurrency', '64']);
  try {
    const patched = await cp.call('PATCH', `/v1/terminals/${agent.terminalId}`, {
      maxConcurrency: 64,
    });
    if (patched.status !== 200) throw new Error(`patch: ${JSON.stringify(patched.body)}`);
    const account = await cp.call('POST', '/v1/accounts', {
      name: 'bench target',
      authType: 'none',
      host: target.url,
      terminalId: agent.terminalId,
    });
    if (account.status !== 201) throw new Error(`account: ${JSON.stringify(account.body)}`);
    const jobBody = JSON.stringify({
      accountId: account.body.id,
      request: { method: 'GET', path: '/1k' },
    });
    const results: RelayResults = { direct: {} as never, relayed: {} as never };
    for (const c of CONCURRENCIES) {
      const direct = new Pool(target.url, { connections: c, pipelining: 1 });
      results.direct[c] = await runLoad(loadOptions(c, seconds), async () => {
        const res = await direct.request({ method: 'GET', path: '/1k' });
        const text = await res.body.text();
        if (res.statusCode !== 200 || text.length !== 1024) throw new Error('bad direct answer');
      });
      await direct.close();
      const relay = new Pool(cp.url, { connections: c, pipelining: 1 });
      results.relayed[c] = await runLoad(loadOptions(c, seconds), async () => {
        const res = await relay.request({
          method: 'POST',
          path: '/v1/jobs?wait=true',
          headers: { authorization: `Bearer ${cp.adminKey}`, 'content-type': 'application/json' },
          body: jobBody,
        });
        const job = (await res.body.json()) as any;
        if (
          res.statusCode !== 200 ||
          job.state !== 'succeeded' ||
          job.response.body.length !== 1024
        )
          throw new Error(`bad relayed answer: ${JSON.stringify(job).slice(0, 200)}`);
      });
      await relay.close();
    }
    return results;
  } finally {
    await agent.stop();
    await cp.stop();
    await target.stop();
  }
}
