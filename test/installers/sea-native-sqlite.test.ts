import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { PRODUCT_VERSION } from '../../shared/version.js';
import { openDatabase, sqliteNativeBinding } from '../../agent/sea/native-sqlite.js';

const root = resolve(import.meta.dirname, '..', '..');

describe('the native SQLite loader on plain node', () => {
  it('hands out no binding, so better-sqlite3 loads its own addon', () => {
    expect(sqliteNativeBinding()).toBeUndefined();
  });

  it('opens a working database', () => {
    const db = openDatabase(':memory:');
    expect(db.prepare('SELECT 40 + 2 AS n').get()).toEqual({ n: 42 });
    db.close();
  });
});

// Builds a ~100 MB executable from a small probe entry (a few seconds), to check the SEA
// plumbing on its own, whatever the state of the agent's CLI.
describe('a single executable built by installers/sea/build-sea.mjs', () => {
  let work: string;
  let executable: string;

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'outpost-sea-test-'));
    executable = join(work, 'out', 'terminal-agent');
    execFileSync(
      process.execPath,
      [
        join(root, 'installers', 'sea', 'build-sea.mjs'),
        '--entry',
        join(import.meta.dirname, 'fixtures', 'sea-probe.ts'),
        '--out',
        executable,
      ],
      { stdio: 'pipe' },
    );
  }, 180_000);

  afterAll(() => {
    rmSync(work, { recursive: true, force: true });
  });

  function run(...args: string[]) {
    const result = spawnSync(executable, args, { encoding: 'utf8', cwd: work });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  }

  it('prints the product version', () => {
    expect(run('--version')).toMatchObject({ status: 0, stdout: `${PRODUCT_VERSION}\n` });
  });

  it('loads the SQLite addon from its asset through a private, versioned cache folder', () => {
    const cacheRoot = join(work, 'cache');
    const db = join(work, 'probe.db');

    const first = run('probe-sqlite', db, '--cache-root', cacheRoot);
    const second = run('probe-sqlite', db, '--cache-root', cacheRoot);

    expect(first.stderr).toBe('');
    expect(first.stdout).toBe('{"sea":true,"rows":1}\n');
    expect(second.stdout).toBe('{"sea":true,"rows":2}\n');
    const [folder, ...others] = readdirSync(cacheRoot);
    expect(others).toEqual([]);
    expect(folder).toMatch(new RegExp(`^outpost-agent-${PRODUCT_VERSION}-[0-9a-f]{16}$`));
    expect(statSync(join(cacheRoot, folder!)).mode & 0o777).toBe(0o700);
    expect(readdirSync(join(cacheRoot, folder!))).toEqual(['better_sqlite3.node']);
  });

  it('installs itself as the service from its embedded scripts', () => {
    const destdir = join(work, 'root');

    const install = run('service', 'install', '--destdir', destdir, '--no-start');
    const status = run('service', 'status', '--destdir', destdir, '--json');

    expect(install.status).toBe(0);
    expect(statSync(join(destdir, 'usr/local/bin/terminal-agent')).size).toBe(
      statSync(executable).size,
    );
    expect(existsSync(join(destdir, 'etc/systemd/system/outpost-agent.service'))).toBe(true);
    expect(status.stdout).toBe('{"installed":true,"state":"staged"}\n');
  });
});
