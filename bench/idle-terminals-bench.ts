/**
 * Memory per idle connected terminal: enrolls many terminals through the API with keys made
 * here, then one load process (idle-load.ts) holds a session for each. The control plane's
 * resident memory is read before and after, once each has settled.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { exportJWK, generateKeyPair, type JWK } from 'jose';

import {
  pollFor,
  spawnLogged,
  startBenchControlPlane,
  type BenchControlPlane,
} from './bench-processes.js';
import { settledRss, statusBytes } from './process-memory.js';

/** What the idle-terminal benchmark measured. */
export interface IdleResults {
  terminals: number;
  connected: number;
  rssBefore: number;
  rssAfter: number;
  perTerminal: number;
  loadProcessRss: number;
  fdLimit: number;
}

/** The soft limit on open files of processes started from here. */
export function fdLimit(): number {
  const r = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' });
  const n = Number(r.stdout.trim());
  return Number.isFinite(n) ? n : Infinity;
}

async function enrollOne(cp: BenchControlPlane, i: number) {
  const created = await cp.call('POST', '/v1/terminals', { name: `idle-${i}` });
  if (created.status !== 201) throw new Error(`terminal create: ${JSON.stringify(created.body)}`);
  const signing = await generateKeyPair('ES256', { extractable: true });
  const encryption = await generateKeyPair('ECDH-ES', { crv: 'P-256', extractable: true });
  const enrolled = await fetch(`${cp.url}/v1/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      token: created.body.enrollmentToken,
      signingKey: await exportJWK(signing.publicKey),
      encryptionKey: await exportJWK(encryption.publicKey),
    }),
  });
  if (enrolled.status !== 201) throw new Error(`enroll: ${await enrolled.text()}`);
  return { id: created.body.id as string, signingPrivateJwk: await exportJWK(signing.privateKey) };
}

/** Connects `count` idle terminals to one fresh control plane and measures its memory. */
export async function idleTerminalsBench(count: number): Promise<IdleResults> {
  const limit = fdLimit();
  if (limit < count + 500) {
    throw new Error(`ulimit -n is ${limit}; ${count} terminals need about ${count + 500}`);
  }
  const cp = await startBenchControlPlane();
  let load: ReturnType<typeof spawnLogged> | undefined;
  try {
    const terminals: Array<{ id: string; signingPrivateJwk: JWK }> = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < count) terminals.push(await enrollOne(cp, next++));
      }),
    );
    const planFile = path.join(cp.dataDir, 'idle-plan.json');
    writeFileSync(planFile, JSON.stringify({ url: cp.url, terminals }), { mode: 0o600 });
    const rssBefore = await settledRss(cp.pid, 3000);
    load = spawnLogged(
      [path.join(import.meta.dirname, 'idle-load.js'), planFile, '240000'],
      path.join(cp.dataDir, 'idle-load.log'),
      {},
    );
    const connected = await pollFor(
      'the idle terminals to connect',
      () => {
        const text = load!.log();
        const ready = Number([...text.matchAll(/ready (\d+)/g)].at(-1)?.[1] ?? 0);
        const failed = Number([...text.matchAll(/failed (\d+)/g)].at(-1)?.[1] ?? 0);
        if (load!.child.exitCode !== null) throw new Error(`load process exited: ${text}`);
        return ready + failed >= count ? ready : undefined;
      },
      180_000,
    );
    const rssAfter = await settledRss(cp.pid, 5000, 9, 300);
    return {
      terminals: count,
      connected,
      rssBefore,
      rssAfter,
      perTerminal: (rssAfter - rssBefore) / Math.max(1, connected),
      loadProcessRss: statusBytes(load.pid, 'VmRSS'),
      fdLimit: limit,
    };
  } finally {
    await load?.stop();
    await cp.stop();
  }
}
