import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { startBodyRetention } from '../../control-plane/jobs/body-retention.js';
import { BodySpool } from '../../control-plane/jobs/body-spool.js';
import { openDatabase } from '../../control-plane/store/database.js';
import { finishJob, insertJob } from '../../control-plane/store/jobs.js';
import { ensureWorkspace } from '../../control-plane/store/workspaces.js';
import { createLogger } from '../../shared/logger.js';

describe('body retention on the control plane', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('deletes the bodies (files and rows) of jobs that ended before the retention period, keeping others', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'outpost-retention-'));
    dirs.push(dir);
    const db = openDatabase(dir);
    const ws = ensureWorkspace(db, 'default');
    const spool = new BodySpool(path.join(dir, 'bodies'));
    const job = (id: string) =>
      insertJob(db, {
        id,
        workspaceId: ws,
        accountId: 'acct_x',
        terminalId: null,
        request: { method: 'GET', path: '/' },
        requestBodyUpload: false,
        idempotencyKey: null,
        deadlineAt: new Date(Date.now() + 60_000).toISOString(),
      });
    const old = job('job_00000000000000000000000000000001');
    const running = job('job_00000000000000000000000000000002');
    for (const j of [old, running]) {
      // Past the size kept in memory, so that each body has its file.
      await spool.append(j.id, 0, Buffer.alloc(2 * 1024 * 1024, 1));
      await spool.close(j.id);
    }
    finishJob(db, old.id, 'succeeded', null, 4);
    db.prepare('UPDATE jobs SET finished_at = ?, body_inline = ? WHERE id = ?').run(
      '2020-01-01T00:00:00.000Z',
      Buffer.from('small body kept in the row'),
      old.id,
    );

    const stop = startBodyRetention(
      db,
      spool,
      path.join(dir, 'bodies'),
      3600_000,
      createLogger({ level: 'error' }),
      20,
    );
    await new Promise((r) => setTimeout(r, 100));
    stop();
    expect(existsSync(spool.pathOf(old.id))).toBe(false);
    expect(
      db.prepare('SELECT COUNT(*) AS n FROM jobs WHERE body_inline IS NOT NULL').get(),
    ).toEqual({ n: 0 });
    expect(existsSync(spool.pathOf(running.id))).toBe(true);
    db.close();
  });
});
