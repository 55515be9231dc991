/**
 * Keeps the control plane's disk bounded: the bodies of jobs that ended longer ago than the
 * retention period are deleted (their job records stay, with `bodyBytes`). Reading such a body
 * afterwards answers as for a job that has no body left.
 */
import { readdirSync, statSync } from 'node:fs';

import type { Logger } from '../../shared/logger.js';
import type { Db } from '../store/database.js';
import type { BodySpool } from './body-spool.js';

/** Deletes old bodies every `everyMs`; returns a function that stops it. */
export function startBodyRetention(
  db: Db,
  spool: BodySpool,
  dir: string,
  retentionMs: number,
  logger: Logger,
  everyMs = 10 * 60_000,
): () => void {
  const finishedBefore = db.prepare(
    "SELECT finished_at FROM jobs WHERE id = ? AND state IN ('succeeded','failed','cancelled','timed_out')",
  );
  const dropInline = db.prepare(
    'UPDATE jobs SET body_inline = NULL WHERE body_inline IS NOT NULL AND finished_at < ?',
  );
  const sweep = () => {
    const cutoff = Date.now() - retentionMs;
    // Small bodies live in the job's row rather than in a file: they age out the same way.
    let removed = dropInline.run(new Date(cutoff).toISOString()).changes;
    for (const file of readdirSync(dir)) {
      const jobId = file.endsWith('.body') ? file.slice(0, -5) : undefined;
      if (!jobId) continue;
      const row = finishedBefore.get(jobId) as { finished_at: string } | undefined;
      // A body whose job is unknown (deleted store rows) is judged by the file's own age.
      const endedAt = row ? Date.parse(row.finished_at) : statSync(`${dir}/${file}`).mtimeMs;
      if (row === undefined && Date.now() - endedAt < retentionMs * 2) continue;
      if (endedAt < cutoff) {
        void spool.remove(jobId);
        removed++;
      }
    }
    if (removed > 0) logger.info('deleted old job bodies', { removed });
  };
  const timer = setInterval(() => {
    try {
      sweep();
    } catch (err) {
      logger.warn('body retention sweep failed', { err });
    }
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
