/**
 * Re-encrypts everything the master key protects with the current key: the secrets of accounts
 * without a terminal and the auth state (OAuth tokens, cookies) of every account. Values sealed
 * with a previous key are read with OUTPOST_PREVIOUS_MASTER_KEYS; once this has run, those keys
 * can be dropped.
 */
import { decryptAtRest, encryptAtRest, keyIdOf } from '../../shared/crypto/aes-gcm.js';
import type { Db } from '../store/database.js';
import type { MasterKeys } from './master-key.js';

/** How many stored values were rewritten, and how many already used the current key. */
export interface RotationReport {
  reencrypted: number;
  current: number;
}

/** Rewrites every value not sealed with the current key, in one transaction. */
export function rotateMasterKey(db: Db, keys: MasterKeys): RotationReport {
  const report: RotationReport = { reencrypted: 0, current: 0 };
  const rewrite = (stored: string, context: string): string | undefined => {
    if (keyIdOf(stored) === keys.current.id) {
      report.current++;
      return undefined;
    }
    report.reencrypted++;
    return encryptAtRest(keys.current, decryptAtRest(keys.all, stored, context), context);
  };
  db.transaction(() => {
    const accounts = db
      .prepare('SELECT id, secrets_encrypted FROM accounts WHERE secrets_encrypted IS NOT NULL')
      .all() as Array<{ id: string; secrets_encrypted: string }>;
    const setAccount = db.prepare('UPDATE accounts SET secrets_encrypted = ? WHERE id = ?');
    for (const a of accounts) {
      const next = rewrite(a.secrets_encrypted, a.id);
      if (next !== undefined) setAccount.run(next, a.id);
    }
    const states = db.prepare('SELECT account_id, state_encrypted FROM auth_state').all() as Array<{
      account_id: string;
      state_encrypted: string;
    }>;
    const setState = db.prepare('UPDATE auth_state SET state_encrypted = ? WHERE account_id = ?');
    for (const s of states) {
      const next = rewrite(s.state_encrypted, `auth-state:${s.account_id}`);
      if (next !== undefined) setState.run(next, s.account_id);
    }
  })();
  return report;
}
