/**
 * The control plane's master key, which encrypts at rest the secrets of accounts without a
 * terminal and their OAuth tokens and cookies. It comes from OUTPOST_MASTER_KEY (32 bytes,
 * base64 or hex) or, failing that, from `DATA_DIR/master.key`, created on first start with mode
 * 0600. Keys being rotated out are listed in OUTPOST_PREVIOUS_MASTER_KEYS (comma separated):
 * they still decrypt, and `control-plane rotate-master-key` re-encrypts everything with the
 * current key.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { atRestKey, type AtRestKey } from '../../shared/crypto/aes-gcm.js';
import { OutpostError } from '../../shared/errors.js';

/** The current key first, then keys that may still decrypt old values. */
export interface MasterKeys {
  current: AtRestKey;
  all: AtRestKey[];
}

function decodeKey(text: string, source: string): AtRestKey {
  const t = text.trim();
  const bytes = /^[0-9a-f]{64}$/i.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
  if (bytes.length !== 32) {
    throw new OutpostError(
      'INVALID_SETTING',
      `${source} must hold a 32-byte key as base64 or 64 hex digits (e.g. from: openssl rand -base64 32)`,
    );
  }
  return atRestKey(bytes);
}

/** Loads the master keys from the environment or the data dir (creating the key file once). */
export function loadMasterKeys(dataDir: string, env: NodeJS.ProcessEnv = process.env): MasterKeys {
  let current: AtRestKey;
  if (env.OUTPOST_MASTER_KEY) {
    current = decodeKey(env.OUTPOST_MASTER_KEY, 'OUTPOST_MASTER_KEY');
  } else {
    const file = env.OUTPOST_MASTER_KEY_FILE ?? path.join(dataDir, 'master.key');
    if (!existsSync(file)) {
      writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    }
    current = decodeKey(readFileSync(file, 'utf8'), file);
  }
  const previous = (env.OUTPOST_PREVIOUS_MASTER_KEYS ?? '')
    .split(',')
    .filter((k) => k.trim() !== '')
    .map((k) => decodeKey(k, 'OUTPOST_PREVIOUS_MASTER_KEYS'));
  return { current, all: [current, ...previous] };
}
