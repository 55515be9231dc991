import { randomBytes } from 'node:crypto';
import path from 'node:path';

import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';

import { atRestKey, keyIdOf } from '../../shared/crypto/aes-gcm.js';
import {
  cleanup,
  controlPlaneCommand,
  createAndEnroll,
  startControlPlane,
  tempDir,
  type ControlPlaneProc,
} from '../helpers/processes.js';
import { recordingServer } from './security-fixtures.js';

const OLD_KEY = randomBytes(32);
const NEW_KEY = randomBytes(32);

function storedKeyIds(dataDir: string): string[] {
  const db = new Database(path.join(dataDir, 'control-plane.db'), { readonly: true });
  const rows = db
    .prepare('SELECT secrets_encrypted FROM accounts WHERE secrets_encrypted IS NOT NULL')
    .all() as Array<{ secrets_encrypted: string }>;
  db.close();
  return rows.map((r) => keyIdOf(r.secrets_encrypted));
}

describe('rotating the control plane master key', () => {
  const dataDir = tempDir('cp-rotate');
  const running: ControlPlaneProc[] = [];

  afterAll(async () => {
    for (const cp of running) await cp.stop();
    cleanup(dataDir);
  });

  it('re-encrypts stored secrets with the new key, after which the old key is not needed', async () => {
    const target = await recordingServer((req) =>
      req.headers.authorization ? { status: 200, body: 'in' } : { status: 401 },
    );
    const first = await startControlPlane({
      dataDir,
      env: { OUTPOST_MASTER_KEY: OLD_KEY.toString('base64') },
    });
    running.push(first);
    const created = await first.api.call('POST', '/v1/accounts', {
      name: 'direct',
      authType: 'basic',
      host: target.url,
      secrets: { username: 'u', password: 'rotate-me' },
    });
    expect(created.status).toBe(201);
    await first.stop();
    expect(storedKeyIds(dataDir)).toEqual([atRestKey(OLD_KEY).id]);

    const env = {
      OUTPOST_MASTER_KEY: NEW_KEY.toString('hex'),
      OUTPOST_PREVIOUS_MASTER_KEYS: OLD_KEY.toString('base64'),
    };
    const rotated = controlPlaneCommand(['rotate-master-key', '--data-dir', dataDir], env);
    expect([rotated.code, rotated.stdout]).toEqual([
      0,
      'Re-encrypted 1 values; 0 already used the current key.\n',
    ]);
    expect(storedKeyIds(dataDir)).toEqual([atRestKey(NEW_KEY).id]);
    const again = controlPlaneCommand(['rotate-master-key', '--data-dir', dataDir], env);
    expect(again.stdout).toBe('Re-encrypted 0 values; 1 already used the current key.\n');

    const second = await startControlPlane({
      dataDir,
      env: { OUTPOST_MASTER_KEY: NEW_KEY.toString('base64'), OUTPOST_PREVIOUS_MASTER_KEYS: '' },
    });
    running.push(second);
    const res = await second.api.call('POST', '/v1/jobs?wait=true', {
      accountId: created.body.id,
      request: { method: 'GET', path: '/after-rotation' },
    });
    expect([res.body.state, res.body.response?.status]).toEqual(['succeeded', 200]);
    expect(target.seen.at(-1)!.headers.authorization).toBe(
      `Basic ${Buffer.from('u:rotate-me').toString('base64')}`,
    );
    await target.close();
  });
});

describe('moving a bound account to another terminal', () => {
  let cp: ControlPlaneProc;
  const dirs: string[] = [];

  afterAll(async () => {
    await cp?.stop();
    cleanup(cp.dataDir, ...dirs);
  });

  it('answers 409 SECRETS_REQUIRED without secrets, and moves with them', async () => {
    cp = await startControlPlane();
    const one = await createAndEnroll(cp, 'one');
    const two = await createAndEnroll(cp, 'two');
    dirs.push(one.dataDir, two.dataDir);
    const created = await cp.api.call('POST', '/v1/accounts', {
      name: 'mover',
      authType: 'bearer',
      host: 'http://127.0.0.1:9',
      terminalId: one.terminalId,
      secrets: { token: 'move-me' },
    });
    const bare = await cp.api.call('PATCH', `/v1/accounts/${created.body.id}`, {
      terminalId: two.terminalId,
    });
    expect([bare.status, bare.body.error.code]).toEqual([409, 'SECRETS_REQUIRED']);
    const still = await cp.api.call('GET', `/v1/accounts/${created.body.id}`);
    expect(still.body.terminalId).toBe(one.terminalId);
    const moved = await cp.api.call('PATCH', `/v1/accounts/${created.body.id}`, {
      terminalId: two.terminalId,
      secrets: { token: 'move-me' },
    });
    expect([moved.status, moved.body.terminalId, moved.body.secretFields]).toEqual([
      200,
      two.terminalId,
      ['token'],
    ]);
  });
});
