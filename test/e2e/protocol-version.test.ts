import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { PROTOCOL_VERSION } from '../../shared/version.js';
import { startControlPlane, type ControlPlaneProc } from '../helpers/processes.js';

/** Enrolls a terminal with keys made here, so that the test can speak the protocol itself. */
async function enrollRaw(cp: ControlPlaneProc) {
  const created = await cp.api.call('POST', '/v1/terminals', { name: 'raw' });
  const signing = await generateKeyPair('ES256', { extractable: true });
  const encryption = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256', extractable: true });
  const res = await fetch(`${cp.url}/v1/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      token: created.body.enrollmentToken,
      signingKey: await exportJWK(signing.publicKey),
      encryptionKey: await exportJWK(encryption.publicKey),
    }),
  });
  expect(res.status).toBe(201);
  const terminalId = created.body.id as string;
  const token = () =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'ES256' })
      .setSubject(terminalId)
      .setIssuer(terminalId)
      .setAudience('outpost-agent-channel')
      .setIssuedAt()
      .setExpirationTime('60s')
      .setJti(crypto.randomUUID())
      .sign(signing.privateKey);
  return { terminalId, token };
}

function hello(protocolVersion: number) {
  return JSON.stringify({
    type: 'hello',
    protocolVersion,
    agentVersion: '9.9.9',
    hostname: 'raw-test',
    os: 'test',
    startedAt: new Date().toISOString(),
    maxConcurrency: 1,
    jobs: [],
  });
}

describe('the agent channel handshake', () => {
  let cp: ControlPlaneProc;

  beforeAll(async () => {
    cp = await startControlPlane();
  });

  afterAll(async () => {
    await cp?.stop();
  });

  it('refuses an agent of an unsupported protocol version with a close reason that says what to install', async () => {
    const { token } = await enrollRaw(cp);
    const ws = new WebSocket(`${cp.url.replace('http', 'ws')}/v1/agent/connect`, {
      headers: { authorization: `Bearer ${await token()}` },
    });
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    ws.on('open', () => ws.send(hello(PROTOCOL_VERSION + 98)));
    const { code, reason } = await closed;
    expect(code).toBe(4426);
    expect(reason).toContain(`protocol ${PROTOCOL_VERSION + 98} unsupported`);
    expect(reason).toContain('install an agent');
  });

  it('welcomes a current agent and lists it online with what it said about itself', async () => {
    const { terminalId, token } = await enrollRaw(cp);
    const ws = new WebSocket(`${cp.url.replace('http', 'ws')}/v1/agent/connect`, {
      headers: { authorization: `Bearer ${await token()}` },
    });
    const first = new Promise<Record<string, unknown>>((resolve) =>
      ws.once('message', (data: Buffer) =>
        resolve(JSON.parse(data.toString()) as Record<string, unknown>),
      ),
    );
    ws.on('open', () => ws.send(hello(PROTOCOL_VERSION)));
    expect(await first).toMatchObject({
      type: 'welcome',
      protocolVersion: PROTOCOL_VERSION,
      terminalId,
    });
    const t = await cp.api.call('GET', `/v1/terminals/${terminalId}`);
    expect(t.body).toMatchObject({
      status: 'online',
      version: '9.9.9',
      hostname: 'raw-test',
      os: 'test',
    });
    ws.close();
  });
});
