/**
 * What the fault tests share: a loopback target that records every request it sees (and can
 * hold answers back), accounts bound to a terminal, polling many jobs to their end, and a TCP
 * relay that cuts every connection through it on demand.
 */
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';

import { ROOT, waitFor, type ApiClient } from '../helpers/processes.js';

/**
 * Runs a `terminal-agent` command without blocking this process (a relay or proxy in the test
 * must keep serving while the command talks through it).
 */
export function agentCommandAsync(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'agent', 'cli.js'), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

/** One request as the target saw it. */
export interface Hit {
  path: string;
  at: number;
  /** Set when the request's connection closed before the target answered. */
  abortedEarly: boolean;
}

/** How the target answers one request; return false to leave it unanswered (held). */
export type Answer = (req: IncomingMessage, res: ServerResponse) => boolean | void;

/** A loopback HTTP target that records hits and runs an answer per request. */
export class RecordingTarget {
  readonly hits: Hit[] = [];
  /** Requests being answered now, and the most at once. */
  inFlight = 0;
  peakInFlight = 0;
  private server: Server | undefined;
  private readonly held: ServerResponse[] = [];
  url = '';

  constructor(private readonly answer: Answer) {}

  /** Starts listening on 127.0.0.1. */
  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const hit: Hit = { path: req.url ?? '', at: Date.now(), abortedEarly: false };
      this.hits.push(hit);
      this.inFlight++;
      this.peakInFlight = Math.max(this.peakInFlight, this.inFlight);
      let done = false;
      const end = () => {
        if (done) return;
        done = true;
        this.inFlight--;
      };
      res.once('finish', end);
      res.once('close', () => {
        if (!res.writableFinished) hit.abortedEarly = true;
        end();
      });
      req.resume();
      if (this.answer(req, res) === false) this.held.push(res);
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** Hits whose path is exactly `path`. */
  hitsOf(path: string): Hit[] {
    return this.hits.filter((h) => h.path === path);
  }

  /** Waits until the target has seen a request for `path`. */
  async sawRequest(path: string): Promise<Hit> {
    return waitFor(`the target to see ${path}`, () => this.hitsOf(path)[0]);
  }

  /** Stops listening and drops held answers. */
  async stop(): Promise<void> {
    for (const res of this.held) res.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

/** Creates an account with auth `none` on the target, bound to a terminal; returns its id. */
export async function bindAccount(
  api: ApiClient,
  terminalId: string,
  host: string,
  settings: Record<string, unknown> = {},
): Promise<string> {
  const res = await api.call('POST', '/v1/accounts', {
    name: `target of ${terminalId}`,
    authType: 'none',
    host,
    terminalId,
    settings,
  });
  if (res.status !== 201) throw new Error(`account create failed: ${JSON.stringify(res.body)}`);
  return res.body.id as string;
}

/** Creates a GET job on a path; returns its id. */
export async function createJob(
  api: ApiClient,
  accountId: string,
  path: string,
  timeoutMs?: number,
): Promise<string> {
  const res = await api.call('POST', '/v1/jobs', {
    accountId,
    request: { method: 'GET', path },
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
  if (res.status !== 202) throw new Error(`job create failed: ${JSON.stringify(res.body)}`);
  return res.body.id as string;
}

const FINAL = new Set(['succeeded', 'failed', 'cancelled', 'timed_out']);

/** Polls jobs (a few at a time) until every one is final; returns them by id. */
export async function waitForAll(
  api: ApiClient,
  ids: string[],
  timeoutMs = 60_000,
): Promise<Map<string, any>> {
  const done = new Map<string, any>();
  const until = Date.now() + timeoutMs;
  while (done.size < ids.length) {
    const open = ids.filter((id) => !done.has(id));
    for (let i = 0; i < open.length; i += 20) {
      const batch = open.slice(i, i + 20);
      const answers = await Promise.all(batch.map((id) => api.call('GET', `/v1/jobs/${id}`)));
      answers.forEach((a, k) => {
        if (FINAL.has(a.body?.state)) done.set(batch[k]!, a.body);
      });
    }
    if (done.size === ids.length) break;
    if (Date.now() > until) {
      throw new Error(`${ids.length - done.size} of ${ids.length} jobs did not end in time`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return done;
}

/** Reads a finished job's body as text. */
export async function bodyOf(api: ApiClient, jobId: string): Promise<string> {
  const res = await fetch(`${api.url}/v1/jobs/${jobId}/body`, {
    headers: { authorization: `Bearer ${api.key}` },
  });
  return res.text();
}

/** A TCP relay on 127.0.0.1 in front of a port, which can cut every connection through it. */
export class CuttingRelay {
  private server: net.Server | undefined;
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  private timer: NodeJS.Timeout | undefined;
  /** Connections accepted, and connections cut. */
  accepted = 0;
  cuts = 0;
  port = 0;

  constructor(private readonly targetPort: number) {}

  /** Starts listening. */
  async start(): Promise<this> {
    this.server = net.createServer((client) => {
      this.accepted++;
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      const pair: [net.Socket, net.Socket] = [client, upstream];
      this.pairs.add(pair);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** Cuts every open connection at once, as a flaky network would. */
  cutAll(): void {
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
      this.cuts++;
    }
    this.pairs.clear();
  }

  /** Cuts everything every `minMs`..`maxMs` milliseconds until `stopCutting`. */
  cutEvery(minMs: number, maxMs: number): void {
    const next = () => {
      this.timer = setTimeout(
        () => {
          this.cutAll();
          next();
        },
        minMs + Math.random() * (maxMs - minMs),
      );
    };
    next();
  }

  /** Stops cutting. */
  stopCutting(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Stops cutting and closes the relay. */
  async stop(): Promise<void> {
    this.stopCutting();
    this.cutAll();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
