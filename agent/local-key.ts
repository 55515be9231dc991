/**
 * The agent's local key: 32 random bytes in `DATA_DIR/local.key`, readable only by the service's
 * user (mode 0600; on Windows the installer restricts the data folder to SYSTEM and
 * Administrators). It encrypts at rest every secret the agent stores.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { atRestKey, type AtRestKey } from '../shared/crypto/aes-gcm.js';

/** The path of the local key file. */
export function localKeyPath(dataDir: string): string {
  return path.join(dataDir, 'local.key');
}

/** Loads the local key, creating it (exclusively, mode 0600) when missing. */
export function loadLocalKey(dataDir: string): AtRestKey {
  const file = localKeyPath(dataDir);
  if (!existsSync(file)) {
    try {
      writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  if (process.platform !== 'win32') chmodSync(file, 0o600);
  return atRestKey(Buffer.from(readFileSync(file, 'utf8').trim(), 'base64'));
}
