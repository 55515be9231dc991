import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';

import { signConnectionToken } from '../../agent/connection-token.js';
import { encodeBodyFrame, FRAME_KIND } from '../../shared/protocol/binary-frames.js';
import { CHANNEL_LIMITS } from '../../shared/protocol/messages.js';
import { PROTOCOL_VERSION } from '../../shared/version.js';
import {
  cleanup,
  startControlPlane,
  waitFor,
  type ControlPlaneProc,
} from '../helpers/processes.js';
import { bindAccount, bodyOf, createJob } from './fault-kit.js';

/** A terminal enrolled with keys made here, speaking the protocol by hand. */
interface RawTerminal {
  id: string;
  signingKey: JWK;
}

/** One raw connection of a terminal: the messages it got and how it closed. */
interface RawSession {
  ws: WebSocket;
  received: Array<Record<string, unknown>>;
  closed: Promise<{ code: number; reason: string }>;
}

async function enrollRaw(cp: ControlPlaneProc, name: string): Promise<RawTerminal> {
  const created = await cp.api.call('POST', '/v1/terminals', { name });
  const signing = await generateKeyPair('ES256', { extractable: true });
  const encryption = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256', extractable: true });
  const pub = async (key: Parameters<typeof exportJWK>[0]) => {
    const { kty, crv, x, y } = await exportJWK(key);
    return { kty, crv, x, y };
  };
  const enrolled = await fetch(`${cp.url}/v1/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      token: created.body.enrollmentToken,
      signingKey: await pub(signing.publicKey),
      encryptionKey: await pub(encryption.publicKey),
    }),
  });
  expect(enrolled.status).toBe(201);
  return { id: created.body.id, signingKey: await exportJWK(signing.privateKey) };
}

/** Opens a connection with a fresh token, says hello and waits for the welcome. */
async function connect(cp: ControlPlaneProc, terminal: RawTerminal): Promise<RawSession> {
  const token = await signConnectionToken(terminal.id, terminal.signingKey);
  const ws = new WebSocket(`${cp.url.replace(/^http/, 'ws')}/v1/agent/connect`, {
    headers: { authorization: `Bearer ${token}` },
    maxPayload: 2 * CHANNEL_LIMITS.maxPayloadBytes,
  });
  const received: Array<Record<string, unknown>> = [];
  ws.on('message', (data, isBinary) => {
    if (!isBinary)
      received.push(JSON.parse((data as Buffer).toString()) as Record<string, unknown>);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => ws.once('open', resolve).once('error', reject));
  ws.send(
    JSON.stringify({
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      agentVersion: 'raw-test',
      hostname: 'raw',
      os: 'test',
      startedAt: new Date().toISOString(),
      maxConcurrency: 4,
      jobs: [],
    }),
  );
  await waitFor('the welcome', () =>
    received.some((m) => m.type === 'welcome') ? true : undefined,
  );
  return { ws, received, closed };
}

describe('bad input on the agent channel', () => {
  let cp: ControlPlaneProc;
  let good: RawTerminal;
  let bad: RawTerminal;
  let goodSession: RawSession;
  let jobOfGood: string;

  beforeAll(async () => {
    cp = await startControlPlane();
    good = await enrollRaw(cp, 'well-behaved');
    bad = await enrollRaw(cp, 'misbehaving');
    goodSession = await connect(cp, good);
    // The target is never called: the raw terminal answers the job itself.
    const accountId = await bindAccount(cp.api, good.id, 'http://127.0.0.1:9');
    jobOfGood = await createJob(cp.api, accountId, '/from-raw');
    await waitFor('the job to reach the good terminal', () =>
      goodSession.received.some((m) => m.type === 'job.start' && m.jobId === jobOfGood)
        ? true
        : undefined,
    );
  });

  afterAll(async () => {
    goodSession?.ws.terminate();
    await cp?.stop();
    cleanup(cp.dataDir);
  });

  const cases: Array<[string, (ws: WebSocket) => void, number, string]> = [
    [
      'invalid JSON',
      (ws) => ws.send('{"type": "heartbeat",'),
      4400,
      'PROTOCOL_ERROR: a text frame was not valid JSON',
    ],
    [
      'an unknown message type',
      (ws) => ws.send(JSON.stringify({ type: 'job.explode', jobId: 'x' })),
      4400,
      'PROTOCOL_ERROR: unknown message type "job.explode"',
    ],
    [
      'a message larger than the channel allows',
      (ws) => ws.send('x'.repeat(CHANNEL_LIMITS.maxPayloadBytes + 1)),
      1009,
      `PROTOCOL_ERROR: a message is over the ${CHANNEL_LIMITS.maxPayloadBytes}-byte limit`,
    ],
    [
      'a binary frame shorter than its header',
      (ws) => ws.send(Buffer.from([1, 2, 3]), { binary: true }),
      4400,
      'PROTOCOL_ERROR: binary frame of 3 bytes is shorter than its header',
    ],
  ];

  for (const [what, send, code, reason] of cases) {
    it(`closes the connection that sends ${what} with ${code} and says why`, async () => {
      const session = await connect(cp, bad);
      send(session.ws);
      expect(await session.closed).toEqual({ code, reason });
    });
  }

  it("closes the connection that sends a body frame for another terminal's job", async () => {
    const session = await connect(cp, bad);
    session.ws.send(encodeBodyFrame(FRAME_KIND.responseBody, jobOfGood, 0, Buffer.from('forged')), {
      binary: true,
    });
    expect(await session.closed).toEqual({
      code: 4400,
      reason: `PROTOCOL_ERROR: job ${jobOfGood} is not a job of this terminal`,
    });
  });

  it('keeps serving the API and the other terminal, whose job ends with its own body', async () => {
    const health = await cp.api.call('GET', '/v1/health');
    expect(health.status).toBe(200);
    expect(goodSession.ws.readyState).toBe(WebSocket.OPEN);

    const body = Buffer.from('the answer, from the well-behaved terminal');
    goodSession.ws.send(JSON.stringify({ type: 'job.running', jobId: jobOfGood }));
    goodSession.ws.send(
      JSON.stringify({
        type: 'job.head',
        jobId: jobOfGood,
        status: 200,
        headers: { 'content-type': 'text/plain' },
      }),
    );
    goodSession.ws.send(encodeBodyFrame(FRAME_KIND.responseBody, jobOfGood, 0, body), {
      binary: true,
    });
    goodSession.ws.send(
      JSON.stringify({
        type: 'job.end',
        jobId: jobOfGood,
        state: 'succeeded',
        error: null,
        bodyBytes: body.length,
      }),
    );
    await waitFor('the job to be acknowledged', () =>
      goodSession.received.some((m) => m.type === 'job.ack' && m.jobId === jobOfGood)
        ? true
        : undefined,
    );

    const job = await cp.api.call('GET', `/v1/jobs/${jobOfGood}`);
    expect(job.body.state).toBe('succeeded');
    expect(await bodyOf(cp.api, jobOfGood)).toBe(body.toString());
    const terminal = await cp.api.call('GET', `/v1/terminals/${good.id}`);
    expect(terminal.body.status).toBe('online');
  });
});
