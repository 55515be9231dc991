/** Starts the target API process of the benchmarks (see target-server.ts). */
import path from 'node:path';

import {
  benchDir,
  deletingDirOnStop,
  pollFor,
  spawnLogged,
  type BenchProc,
} from './bench-processes.js';

/** A running target with its base URL. */
export interface BenchTarget extends BenchProc {
  url: string;
}

/** Starts the target on a free loopback port. */
export async function startTarget(): Promise<BenchTarget> {
  const dir = benchDir('target');
  const proc = spawnLogged(
    [path.join(import.meta.dirname, 'target-server.js')],
    path.join(dir, 'target.log'),
    {},
  );
  const url = await pollFor('the target to listen', () => {
    if (proc.child.exitCode !== null) throw new Error(`target exited: ${proc.log()}`);
    return /Target on (http:\/\/127\.0\.0\.1:\d+)/.exec(proc.log())?.[1];
  });
  return deletingDirOnStop({ ...proc, url }, dir);
}
