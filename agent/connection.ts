/**
 * The connection loop: dial out to the control plane over a WebSocket, prove the terminal with
 * a fresh token, say hello, keep a heartbeat, and reconnect with capped, jittered backoff when
 * anything breaks. The agent never listens for inbound connections.
 */
import type { Agent as HttpAgent } from 'node:http';
import os from 'node:os';

import WebSocket from 'ws';

import type { Logger } from '../shared/logger.js';
import { decodeBodyFrame } from '../shared/protocol/binary-frames.js';
import { parseFrame } from '../shared/protocol/codec.js';
import {
  CHANNEL_LIMITS,
  CLOSE_CODES,
  controlMessageSchema,
  type AgentMessage,
  type ControlMessage,
} from '../shared/protocol/messages.js';
import type { AgentIdentity } from './agent-store.js';
import { signConnectionToken } from './connection-token.js';

/** Options of the connection loop, compiled once. */
export interface ConnectionOptions {
  identity: AgentIdentity;
  logger: Logger;
  /** An agent that tunnels through a proxy, when one is configured. */
  httpAgent?: HttpAgent;
  /** Extra CA certificates to trust for the control plane. */
  ca?: string[];
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Builds the hello (the journal decides which jobs it lists). */
  hello(): Extract<AgentMessage, { type: 'hello' }>;
  onMessage(message: ControlMessage): void;
  onBinary(data: Buffer): void;
  onState(state: { connected: boolean; since: Date | null; error: string | null }): void;
  onHeartbeat(at: Date): void;
  /** The terminal was revoked: the connection loop has stopped for good. */
  onRevoked?(error: string): void;
}

/** The live connection to the control plane. */
export class AgentConnection {
  private ws: WebSocket | undefined;
  private ready = false;
  private stopped = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private lastReceivedAt = Date.now();
  private readonly log: Logger;
  private readonly readyWaiters: Array<() => void> = [];
  /** Sockets closed for a protocol error: whatever else they deliver is ignored. */
  private readonly refused = new WeakSet<WebSocket>();

  constructor(private readonly options: ConnectionOptions) {
    this.log = options.logger.child({ component: 'connection' });
  }

  /** True while an authenticated session is up (after welcome). */
  get connected(): boolean {
    return this.ready && this.ws?.readyState === WebSocket.OPEN;
  }

  /** Starts connecting (and reconnecting until `stop`). */
  start(): void {
    this.stopped = false;
    void this.connect();
  }

  /** Closes the connection for good. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.heartbeat) clearInterval(this.heartbeat);
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      await new Promise<void>((resolve) => {
        ws.once('close', () => resolve());
        ws.close(CLOSE_CODES.goingAway, 'agent stopping');
        setTimeout(resolve, 2000).unref();
      });
    }
    ws?.terminate();
  }

  /** Sends a control message; false when not connected. */
  send(message: AgentMessage): boolean {
    if (!this.connected) return false;
    this.ws!.send(JSON.stringify(message));
    return true;
  }

  /** Sends a binary frame; resolves false when not connected. */
  sendBinary(frame: Buffer): Promise<boolean> {
    const ws = this.ws;
    if (!this.connected || !ws) return Promise.resolve(false);
    return new Promise((resolve) => ws.send(frame, { binary: true }, (err) => resolve(!err)));
  }

  /** Resolves once connected (or at once when already). */
  whenConnected(signal?: AbortSignal): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve) => {
      this.readyWaiters.push(resolve);
      signal?.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  private wsUrl(): string {
    const base = new URL(this.options.identity.controlPlaneUrl);
    base.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
    base.pathname = `${base.pathname.replace(/\/$/, '')}/v1/agent/connect`;
    return base.toString();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const { identity } = this.options;
    let token: string;
    try {
      token = await signConnectionToken(identity.terminalId, identity.signingPrivateJwk);
    } catch (err) {
      this.fail(`could not sign a connection token: ${(err as Error).message}`);
      return;
    }
    // Limits are explicit: a message (however many fragments it arrives in) is refused past
    // maxPayload with close code 1009; no compression (no decompression bombs); no redirects, so
    // the token is only ever sent to the configured control plane.
    const ws = new WebSocket(this.wsUrl(), {
      headers: { authorization: `Bearer ${token}` },
      maxPayload: CHANNEL_LIMITS.maxPayloadBytes,
      perMessageDeflate: false,
      followRedirects: false,
      skipUTF8Validation: false,
      handshakeTimeout: 15_000,
      agent: this.options.httpAgent,
      ca: this.options.ca,
    });
    this.ws = ws;
    // 'error' says why a connection failed; the 'close' that follows only says 1006. Keep the
    // first reason as the recorded last error.
    let failureReported = false;
    ws.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let message = `HTTP ${res.statusCode}`;
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
            error?: { code: string; message: string };
          };
          if (body.error) message = `${body.error.code}: ${body.error.message}`;
        } catch {
          // Not JSON: keep the status line.
        }
        failureReported = true;
        if (res.statusCode === 403) this.revoked(message);
        else this.fail(`the control plane refused the connection (${message})`);
        ws.terminate();
      });
    });
    ws.on('open', () => {
      this.lastReceivedAt = Date.now();
      ws.send(JSON.stringify(this.options.hello()));
    });
    ws.on('message', (data, isBinary) => {
      this.lastReceivedAt = Date.now();
      if (this.refused.has(ws)) return;
      let message: ControlMessage;
      try {
        if (isBinary) {
          // Checked here so that a malformed frame closes the connection like bad JSON does.
          decodeBodyFrame(data as Buffer);
          this.options.onBinary(data as Buffer);
          return;
        }
        message = parseFrame(controlMessageSchema, (data as Buffer).toString('utf8'));
      } catch (err) {
        const reason = (err as Error).message;
        this.log.warn('closing: the control plane sent a malformed message', { reason });
        this.refused.add(ws);
        ws.close(CLOSE_CODES.protocolError, Buffer.from(reason).subarray(0, 123).toString());
        setTimeout(() => ws.terminate(), 2000).unref();
        return;
      }
      if (message.type === 'welcome') this.welcome(message);
      else if (message.type === 'heartbeat.ack') this.options.onHeartbeat(new Date());
      this.options.onMessage(message);
    });
    ws.on('close', (code, reasonBuf) => {
      const reason = reasonBuf.toString();
      const wasReady = this.ready;
      this.ready = false;
      if (this.heartbeat) clearInterval(this.heartbeat);
      if (this.stopped) return;
      if (code === CLOSE_CODES.revoked) this.revoked(reason);
      else if (code === CLOSE_CODES.versionUnsupported)
        this.fail(`the control plane refused this version: ${reason}`, true);
      else if (wasReady) {
        this.log.warn('connection lost; reconnecting', { code, reason });
        this.options.onState({
          connected: false,
          since: null,
          error: `connection lost (${code}${reason ? `: ${reason}` : ''})`,
        });
        this.schedule();
      } else if (!failureReported)
        this.fail(
          `connection closed before the session began (${code}${reason ? `: ${reason}` : ''})`,
        );
    });
    ws.on('error', (err) => {
      this.log.debug('socket error', { err: err.message });
      if (!this.ready && ws.readyState !== WebSocket.OPEN) {
        failureReported = true;
        this.fail(`cannot reach the control plane: ${err.message}`);
      }
    });
  }

  private welcome(message: Extract<ControlMessage, { type: 'welcome' }>): void {
    this.ready = true;
    this.attempt = 0;
    const since = new Date();
    this.log.info('connected to the control plane', { terminalId: message.terminalId });
    this.options.onState({ connected: true, since, error: null });
    this.options.onHeartbeat(since);
    if (this.heartbeat) clearInterval(this.heartbeat);
    const every = message.heartbeatMs;
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastReceivedAt > every * 2.5) {
        this.log.warn('the control plane went quiet; reconnecting');
        this.ws?.terminate();
        return;
      }
      this.send({ type: 'heartbeat', sentAt: new Date().toISOString(), running: 0 });
    }, every);
    this.heartbeat.unref();
    for (const w of this.readyWaiters.splice(0)) w();
  }

  /**
   * Records why connecting failed and schedules the next attempt (slowly when refused). The same
   * failure may arrive as both 'error' and 'close'; `schedule` keeps a single timer.
   */
  /**
   * The control plane revoked this terminal: trying again cannot succeed, so the loop stops and
   * the daemon exits (the service unit does not restart on that exit code).
   */
  private revoked(reason: string): void {
    if (this.stopped) return;
    const error = `this terminal was revoked (${reason}); enroll it again with a new token`;
    this.log.error('terminal revoked; not reconnecting', { reason });
    this.options.onState({ connected: false, since: null, error });
    this.stopped = true;
    this.options.onRevoked?.(error);
  }

  private fail(error: string, refused = false): void {
    if (this.stopped) return;
    this.log.warn('not connected', { error });
    this.options.onState({ connected: false, since: null, error });
    this.schedule(refused);
  }

  private schedule(slow = false): void {
    if (this.stopped || this.timer) return;
    const min = this.options.minBackoffMs ?? 500;
    const max = this.options.maxBackoffMs ?? 30_000;
    const ceiling = slow ? max : Math.min(max, min * 2 ** this.attempt);
    this.attempt++;
    // Full jitter keeps a fleet of terminals from reconnecting in lockstep after an outage.
    const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.connect();
    }, delay);
  }
}

/** Facts about this machine for the hello. */
export function machineFacts(): { hostname: string; os: string } {
  return {
    hostname: os.hostname().slice(0, 255),
    os: `${os.type()} ${os.release()} ${os.arch()}`.slice(0, 100),
  };
}
