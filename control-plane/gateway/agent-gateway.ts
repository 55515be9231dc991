/**
 * The agent WebSocket endpoint. A terminal dials out to `/v1/agent/connect` with a connection
 * token in its Authorization header; the upgrade is refused with a JSON error unless the token
 * proves an active terminal. One live session per terminal: a new one replaces the old.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

import { WebSocketServer } from 'ws';

import type { AccountDescriptor } from '../../shared/accounts.js';
import { OutpostError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import {
  CHANNEL_LIMITS,
  CLOSE_CODES,
  type ControlMessage,
} from '../../shared/protocol/messages.js';
import type { TerminalLink } from '../jobs/job-service.js';
import type { Db } from '../store/database.js';
import { AgentSession, type SessionDeps } from './agent-session.js';
import { verifyTerminalToken } from './terminal-token.js';

/** Path of the agent channel. */
export const AGENT_CHANNEL_PATH = '/v1/agent/connect';

/** Accepts agent connections and keeps the live session of each terminal. */
export class AgentGateway implements TerminalLink {
  private readonly wss: WebSocketServer;
  private readonly sessions = new Map<string, AgentSession>();
  /** Every open session, ready or not (the graceful stop closes them all). */
  private readonly all = new Set<AgentSession>();
  private stopping = false;

  constructor(
    private readonly db: Db,
    private readonly deps: Omit<SessionDeps, 'onReady' | 'onClosed' | 'db'>,
    private readonly logger: Logger,
  ) {
    // Limits are explicit: a message past maxPayload (however many fragments it came in) closes
    // the connection with 1009; no compression, so no decompression bombs.
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: CHANNEL_LIMITS.maxPayloadBytes,
      perMessageDeflate: false,
      clientTracking: false,
      skipUTF8Validation: false,
    });
  }

  /** Handles an HTTP upgrade; answers 404 for any other path. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.stopping) {
      refuse(socket, 503, 'UNAVAILABLE', 'the control plane is stopping; connect again shortly');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://upgrade.invalid');
    if (url.pathname !== AGENT_CHANNEL_PATH) {
      refuse(
        socket,
        404,
        'ROUTE_NOT_FOUND',
        'no WebSocket endpoint here; agents connect to /v1/agent/connect',
      );
      return;
    }
    const auth = req.headers.authorization ?? '';
    const token = /^Bearer\s+(.+)$/i.exec(auth)?.[1];
    if (!token) {
      refuse(
        socket,
        401,
        'TERMINAL_TOKEN_INVALID',
        'missing Authorization: Bearer <connection token>',
      );
      return;
    }
    verifyTerminalToken(this.db, token).then(
      (terminal) => {
        if (this.stopping) {
          refuse(
            socket,
            503,
            'UNAVAILABLE',
            'the control plane is stopping; connect again shortly',
          );
          return;
        }
        this.wss.handleUpgrade(req, socket, head, (ws) => {
          const previous = this.sessions.get(terminal.id);
          const session = new AgentSession(terminal, ws, {
            ...this.deps,
            db: this.db,
            onReady: (s) => {
              if (previous && previous !== s)
                previous.close(CLOSE_CODES.replaced, 'replaced by a newer connection');
              this.sessions.set(terminal.id, s);
              this.deps.jobs.pump(terminal.id);
            },
            onClosed: (s) => {
              this.all.delete(s);
              if (this.sessions.get(terminal.id) === s) this.sessions.delete(terminal.id);
            },
          });
          this.all.add(session);
        });
      },
      (err: unknown) => {
        const e =
          err instanceof OutpostError ? err : new OutpostError('INTERNAL', 'connection refused');
        this.logger.warn('refused an agent connection', { code: e.code, reason: e.message });
        refuse(socket, e.httpStatus === 403 ? 403 : 401, e.code, e.message);
      },
    );
  }

  /** The live session of a terminal. */
  session(terminalId: string): AgentSession | undefined {
    const s = this.sessions.get(terminalId);
    return s?.state === 'ready' ? s : undefined;
  }

  isOnline(terminalId: string): boolean {
    return this.session(terminalId) !== undefined;
  }

  agentConcurrency(terminalId: string): number | undefined {
    return this.session(terminalId)?.agentConcurrency;
  }

  send(terminalId: string, message: ControlMessage): boolean {
    return this.session(terminalId)?.send(message) ?? false;
  }

  /** Sends a binary frame to a connected terminal; false when it is not connected. */
  async sendBinary(terminalId: string, frame: Buffer): Promise<boolean> {
    return (await this.session(terminalId)?.sendBinary(frame)) ?? false;
  }

  /** Tells a connected terminal about a new or changed account. */
  pushAccount(terminalId: string, account: AccountDescriptor): void {
    this.send(terminalId, { type: 'account.upsert', account });
  }

  /** Tells a connected terminal to forget an account. */
  removeAccount(terminalId: string, accountId: string): void {
    this.send(terminalId, { type: 'account.remove', accountId });
  }

  /** Closes a terminal's connection at once (revocation). */
  disconnect(terminalId: string, code: number, reason: string): void {
    const s = this.sessions.get(terminalId);
    this.sessions.delete(terminalId);
    s?.close(code, reason);
  }

  /** Number of live sessions. */
  get size(): number {
    return this.sessions.size;
  }

  /** Closes every session (shutdown). */
  closeAll(reason: string): void {
    for (const s of this.all) s.close(CLOSE_CODES.goingAway, reason);
    this.sessions.clear();
  }

  /**
   * Graceful stop: refuses new connections, closes every session with 1001 (agents reconnect
   * with backoff and resend what was not acknowledged), and waits up to `deadlineMs` for the
   * messages already received to be handled and the sockets to close, so that nothing is still
   * writing to the store when it closes.
   */
  async stop(deadlineMs: number): Promise<void> {
    this.stopping = true;
    const open = [...this.all];
    const closed = open.map((s) => new Promise<void>((resolve) => s.onceClosed(resolve)));
    this.closeAll('control plane shutting down');
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, deadlineMs)));
    await Promise.race([
      Promise.all([...closed, ...open.map((s) => s.settled())]).then(() => undefined),
      deadline,
    ]);
    clearTimeout(timer);
    for (const s of open) s.terminate();
  }
}

function refuse(socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  const text =
    status === 404
      ? 'Not Found'
      : status === 403
        ? 'Forbidden'
        : status === 503
          ? 'Service Unavailable'
          : 'Unauthorized';
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Connection: close\r\n\r\n${body}`,
  );
}
