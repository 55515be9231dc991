/**
 * The load process of the idle-terminal benchmark: one process that holds many terminal
 * sessions at once, speaking the protocol minimally (a connection token per socket, hello,
 * heartbeats), instead of one agent process per terminal. Reads its terminals from the JSON file
 * named by argv[2]; prints `ready N` and `failed N` lines; exits on SIGTERM or after its
 * lifetime (argv[3], ms) so that it never outlives the benchmark.
 */
import { readFileSync } from 'node:fs';

import type { JWK } from 'jose';
import WebSocket from 'ws';

import { signConnectionToken } from '../agent/connection-token.js';
import { PROTOCOL_VERSION } from '../shared/version.js';

interface Plan {
  url: string;
  terminals: Array<{ id: string; signingPrivateJwk: JWK }>;
}

const plan = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Plan;
const lifetimeMs = Number(process.argv[3] ?? 300_000);
const sockets: WebSocket[] = [];
let ready = 0;
let failed = 0;

function report(): void {
  process.stdout.write(`ready ${ready}\nfailed ${failed}\n`);
}

/** Opens one session; resolves once welcomed (or failed). */
async function open(terminal: Plan['terminals'][number]): Promise<void> {
  const token = await signConnectionToken(terminal.id, terminal.signingPrivateJwk);
  const wsUrl = `${plan.url.replace(/^http/, 'ws')}/v1/agent/connect`;
  const ws = new WebSocket(wsUrl, {
    headers: { authorization: `Bearer ${token}` },
    perMessageDeflate: false,
  });
  sockets.push(ws);
  await new Promise<void>((resolve) => {
    let welcomed = false;
    ws.on('open', () => {
      ws.send(
        JSON.stringify({
          type: 'hello',
          protocolVersion: PROTOCOL_VERSION,
          agentVersion: 'bench-load',
          hostname: 'bench-load',
          os: 'linux',
          startedAt: new Date().toISOString(),
          maxConcurrency: 1,
          jobs: [],
        }),
      );
    });
    ws.on('message', (data) => {
      const message = JSON.parse((data as Buffer).toString('utf8')) as {
        type: string;
        heartbeatMs?: number;
      };
      if (message.type !== 'welcome' || welcomed) return;
      welcomed = true;
      ready++;
      const every = message.heartbeatMs ?? 15_000;
      // Spread the heartbeats so that they do not all land in the same tick.
      const first = setTimeout(() => {
        const beat = () =>
          ws.readyState === ws.OPEN &&
          ws.send(
            JSON.stringify({ type: 'heartbeat', sentAt: new Date().toISOString(), running: 0 }),
          );
        beat();
        setInterval(beat, every).unref();
      }, Math.random() * every);
      first.unref();
      resolve();
    });
    const fail = () => {
      if (!welcomed) {
        failed++;
        resolve();
      }
    };
    ws.on('error', fail);
    ws.on('close', fail);
  });
}

async function main(): Promise<void> {
  const queue = [...plan.terminals];
  // A few dozen handshakes at a time: the control plane verifies a signature for each.
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      for (let t = queue.shift(); t; t = queue.shift()) {
        await open(t);
        if ((ready + failed) % 100 === 0) report();
      }
    }),
  );
  report();
}

setTimeout(() => process.exit(0), lifetimeMs).unref();
setInterval(() => undefined, 60_000);
process.on('SIGTERM', () => {
  for (const ws of sockets) ws.terminate();
  process.exit(0);
});
void main();
