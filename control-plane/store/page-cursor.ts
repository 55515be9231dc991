/**
 * Cursors of the list endpoints are ids of the last item of a page. One that names nothing in
 * the caller's workspace is refused, as `/v1/audit` refuses a bad cursor, rather than read as
 * "no more items" (an empty page) or placed by another workspace's object.
 */
import { OutpostError } from '../../shared/errors.js';
import type { Db } from './database.js';

/** The tables listed with an id cursor. */
export type CursorTable = 'accounts' | 'jobs' | 'terminals';

/** Throws VALIDATION_FAILED (field `cursor`) unless `cursor` is null or an id of the workspace. */
export function assertPageCursor(
  db: Db,
  table: CursorTable,
  workspaceId: string,
  cursor: string | null,
): void {
  if (cursor === null) return;
  const found = db
    .prepare(`SELECT 1 FROM ${table} WHERE id = ? AND workspace_id = ?`)
    .get(cursor, workspaceId);
  if (found === undefined) {
    throw new OutpostError('VALIDATION_FAILED', 'cursor must be a cursor from a previous page', {
      field: 'cursor',
    });
  }
}
