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

  constructor(
    private readonly db: Db,
    private readonly deps: Omit<SessionDeps, 'onReady' | 'onClosed' | 'db'>,
    private readonly logger: Logger,
  ) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: CHANNEL_LIMITS.maxPayloadBytes,
      perMessageDeflate: false,
      clientTracking: false,
    });
  }

  /** Handles an HTTP upgrade; answers 404 for any other path. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
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
              if (this.sessions.get(terminal.id) === s) this.sessions.delete(terminal.id);
            },
          });
          void session;
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
    for (const s of this.sessions.values()) s.close(CLOSE_CODES.goingAway, reason);
    this.sessions.clear();
  }
}

function refuse(socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  const text = status === 404 ? 'Not Found' : status === 403 ? 'Forbidden' : 'Unauthorized';
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Connection: close\r\n\r\n${body}`,
  );
}
