/**
 * Where the public test vectors are: `../shared/vectors` beside the repo (as laid out for
 * developers and CI), or OUTPOST_VECTORS_DIR. A fresh clone elsewhere has none; the tests that
 * need them then skip, except in CI, where their absence is an error.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

const repoRoot = path.resolve(import.meta.dirname, '..', '..');

/** The vectors folder, or undefined when it is not there (outside CI). */
export function vectorsDir(): string | undefined {
  const dir = process.env.OUTPOST_VECTORS_DIR ?? path.join(repoRoot, '..', 'shared', 'vectors');
  if (existsSync(dir)) return dir;
  if (process.env.CI === 'true') throw new Error(`the public test vectors are missing at ${dir}`);
  return undefined;
}
