import path from 'node:path';

import Database from 'better-sqlite3';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  cleanup,
  createAndEnroll,
  startAgent,
  startControlPlane,
  tempDir,
  waitFor,
  type AgentProc,
  type ControlPlaneProc,
} from '../helpers/processes.js';
import {
  agentSigningKey,
  rawUpgrade,
  signTerminalToken,
  tokenFromAnotherKey,
  unsignedToken,
} from './security-fixtures.js';

async function enrollBody(token: string) {
  const publicJwk = async () => {
    const { publicKey } = await generateKeyPair('ES256', { extractable: true });
    const { kty, crv, x, y } = await exportJWK(publicKey);
    return { kty, crv, x, y };
  };
  return { token, signingKey: await publicJwk(), encryptionKey: await publicJwk() };
}

describe('an attacker holding captured or forged terminal credentials', () => {
  let cp: ControlPlaneProc;
  let idle: { terminalId: string; dataDir: string };
  let live: { terminalId: string; dataDir: string };
  let agent: AgentProc;

  beforeAll(async () => {
    cp = await startControlPlane();
    idle = await createAndEnroll(cp, 'idle');
    live = await createAndEnroll(cp, 'live');
    agent = await startAgent(cp, live.terminalId, live.dataDir);
  });

  afterAll(async () => {
    await agent?.stop();
    await cp?.stop();
    cleanup(cp.dataDir, idle.dataDir, live.dataDir);
  });

  it('is refused when it replays a connection token that was already used', async () => {
    const token = await signTerminalToken(idle.terminalId, agentSigningKey(idle.dataDir));
    expect((await rawUpgrade(cp.url, token)).status).toBe(101);
    const replay = await rawUpgrade(cp.url, token);
    expect(replay.status).toBe(401);
    expect(replay.body?.error?.code).toBe('TERMINAL_TOKEN_INVALID');
  });

  it('is refused with an expired token signed by the right key', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await signTerminalToken(idle.terminalId, agentSigningKey(idle.dataDir), {
      issuedAt: now - 400,
      expiresAt: now - 340,
    });
    const answer = await rawUpgrade(cp.url, token);
    expect(answer.status).toBe(401);
    expect(answer.body?.error?.code).toBe('TERMINAL_TOKEN_INVALID');
  });

  it('is refused with a token that lives longer than five minutes', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await signTerminalToken(idle.terminalId, agentSigningKey(idle.dataDir), {
      issuedAt: now,
      expiresAt: now + 3600,
    });
    const answer = await rawUpgrade(cp.url, token);
    expect(answer.status).toBe(401);
    expect(answer.body?.error?.code).toBe('TERMINAL_TOKEN_INVALID');
  });

  it('is refused with a token signed by another key, unsigned, or missing', async () => {
    for (const token of [
      await tokenFromAnotherKey(idle.terminalId),
      unsignedToken(idle.terminalId),
      'not-a-jwt',
      null,
    ]) {
      const answer = await rawUpgrade(cp.url, token);
      expect(answer.status).toBe(401);
      expect(answer.body?.error?.code).toBe('TERMINAL_TOKEN_INVALID');
    }
  });

  it('cannot spend an enrollment token a second time', async () => {
    const created = await cp.api.call('POST', '/v1/terminals', { name: 'once' });
    const first = await fetch(`${cp.url}/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(await enrollBody(created.body.enrollmentToken)),
    });
    expect(first.status).toBe(201);
    const second = await fetch(`${cp.url}/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(await enrollBody(created.body.enrollmentToken)),
    });
    expect(second.status).toBe(401);
    expect(((await second.json()) as { error: { code: string } }).error.code).toBe(
      'ENROLLMENT_TOKEN_INVALID',
    );
  });

  it('cannot spend an enrollment token after it expired', async () => {
    const created = await cp.api.call('POST', '/v1/terminals', { name: 'late' });
    const db = new Database(path.join(cp.dataDir, 'control-plane.db'));
    db.prepare('UPDATE terminals SET enrollment_expires_at = ? WHERE id = ?').run(
      new Date(Date.now() - 1000).toISOString(),
      created.body.id,
    );
    db.close();
    const res = await fetch(`${cp.url}/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(await enrollBody(created.body.enrollmentToken)),
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      'ENROLLMENT_TOKEN_INVALID',
    );
    const t = await cp.api.call('GET', `/v1/terminals/${created.body.id}`);
    expect(t.body.status).toBe('pending');
  });

  it('loses the live socket the moment the terminal is revoked, and cannot come back', async () => {
    const key = agentSigningKey(live.dataDir);
    const revoked = await cp.api.call('DELETE', `/v1/terminals/${live.terminalId}`);
    expect(revoked.status).toBe(204);
    const after = await cp.api.call('GET', `/v1/terminals/${live.terminalId}`);
    expect(after.body.status).toBe('revoked');
    // The agent hears the revocation on its socket at once and stops trying.
    await waitFor('the agent to hear it', () =>
      agent.stdout().includes('this terminal was revoked') ? true : undefined,
    );
    // It exits with 2, on which the service unit does not restart it.
    expect(await agent.exited).toBe(2);
    const back = await rawUpgrade(cp.url, await signTerminalToken(live.terminalId, key));
    expect(back.status).toBe(403);
    expect(back.body?.error?.code).toBe('TERMINAL_REVOKED');
    // Without the terminal's key, nobody learns that it was revoked.
    const { privateKey: otherKey } = await generateKeyPair('ES256');
    const forged = await rawUpgrade(cp.url, await signTerminalToken(live.terminalId, otherKey));
    expect(forged.status).toBe(401);
    expect(forged.body?.error?.code).toBe('TERMINAL_TOKEN_INVALID');
  });
});

describe('a control plane with a short enrollment lifetime', () => {
  const dataDir = tempDir('cp-ttl');
  let cp: ControlPlaneProc;

  beforeAll(async () => {
    cp = await startControlPlane({ dataDir, env: { OUTPOST_ENROLLMENT_TTL_MS: '1' } });
  });

  afterAll(async () => {
    await cp?.stop();
    cleanup(dataDir);
  });

  it('refuses a token once OUTPOST_ENROLLMENT_TTL_MS has passed', async () => {
    const created = await cp.api.call('POST', '/v1/terminals', { name: 'short' });
    expect(Date.parse(created.body.enrollmentExpiresAt)).toBeLessThan(Date.now() + 1000);
    await new Promise((r) => setTimeout(r, 20));
    const res = await fetch(`${cp.url}/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(await enrollBody(created.body.enrollmentToken)),
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      'ENROLLMENT_TOKEN_INVALID',
    );
  });
});
