/**
 * The real terminal agent as a single executable, end to end: `npm run package` from this
 * checkout, then the executable's commands. Heavy (a full build and a ~100 MB file), so it runs
 * in CI (CI=true) or when OUTPOST_SEA_E2E=1; elsewhere it is skipped.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { PRODUCT_VERSION } from '../../shared/version.js';

const root = resolve(import.meta.dirname, '..', '..');
const executable = join(root, 'dist', 'sea', 'terminal-agent');
// Also needs the agent's CLI, written alongside these installers; without it there is nothing
// to package yet.
const wanted =
  (process.env.CI === 'true' || process.env.OUTPOST_SEA_E2E === '1') &&
  existsSync(join(root, 'agent', 'cli.ts'));

/**
 * Enrolls the executable against a control plane started on 127.0.0.1 and has it complete one
 * job. Not written yet: the control plane and the enroll flow are being built at the same time
 * as this test. Until then the test that calls it is skipped (and shows as skipped).
 */
async function enrollAndCompleteOneJob(agent: string, workDir: string): Promise<void> {
  throw new Error(`enroll-and-job step not written yet (agent ${agent}, work dir ${workDir})`);
}

describe.runIf(wanted)('the packaged terminal agent', () => {
  let work: string;

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'outpost-sea-e2e-'));
    execFileSync('npm', ['run', 'package'], { cwd: root, stdio: 'pipe', timeout: 600_000 });
  }, 660_000);

  afterAll(() => {
    rmSync(work, { recursive: true, force: true });
  });

  it('is built at dist/sea/terminal-agent', () => {
    expect(existsSync(executable)).toBe(true);
  });

  it('prints the product version', () => {
    const result = spawnSync(executable, ['--version'], { encoding: 'utf8' });

    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe(PRODUCT_VERSION);
    expect(result.status).toBe(0);
  });

  it('reports a fresh data dir as not enrolled (status exits 2)', () => {
    const result = spawnSync(executable, ['status', '--data-dir', join(work, 'fresh')], {
      encoding: 'utf8',
    });

    expect(result.status).toBe(2);
  });

  it.skip('enrolls against a test control plane and completes one job', async () => {
    await enrollAndCompleteOneJob(executable, work);
  });
});
