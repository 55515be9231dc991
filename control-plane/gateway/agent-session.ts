/**
 * One connected terminal: the control plane's half of the protocol. It checks every message
 * against its schema, owns the terminal's jobs on the wire (start, credit, results, acks), and
 * closes the connection with a protocol error code on anything malformed.
 */
import type { WebSocket } from 'ws';

import { OutpostError } from '../../shared/errors.js';
import { isFinalState } from '../../shared/jobs.js';
import type { Logger } from '../../shared/logger.js';
import {
  decodeBodyFrame,
  FRAME_KIND,
  type BodyFrame,
} from '../../shared/protocol/binary-frames.js';
import { parseFrame } from '../../shared/protocol/codec.js';
import {
  agentMessageSchema,
  CHANNEL_LIMITS,
  CLOSE_CODES,
  type AgentMessage,
  type ControlMessage,
} from '../../shared/protocol/messages.js';
import { MIN_PROTOCOL_VERSION, PROTOCOL_VERSION } from '../../shared/version.js';
import type { AccountService } from '../accounts/account-service.js';
import type { JobService } from '../jobs/job-service.js';
import { accountsOfTerminal, recordTerminalAccountStatus } from '../store/accounts.js';
import type { Db } from '../store/database.js';
import { getJobById, getJobOwnerState } from '../store/jobs.js';
import { recordAgentHello, recordHeartbeat, type TerminalRecord } from '../store/terminals.js';

/** What a session needs from the control plane. */
export interface SessionDeps {
  db: Db;
  jobs: JobService;
  accounts: AccountService;
  logger: Logger;
  heartbeatMs: number;
  onReady(session: AgentSession): void;
  onClosed(session: AgentSession): void;
}

const TOO_BIG_REASON = `PROTOCOL_ERROR: a message is over the ${CHANNEL_LIMITS.maxPayloadBytes}-byte limit`;

type Pending = { resolve: (value: AgentMessage) => void; timer: NodeJS.Timeout };

/** The state of a session: waiting for hello, ready, or closed. */
export type SessionState = 'awaiting-hello' | 'ready' | 'closed';

/** The control plane's end of one agent connection. */
export class AgentSession {
  state: SessionState = 'awaiting-hello';
  agentConcurrency = 1;
  connectedAt = new Date();
  private lastMessageAt = Date.now();
  private readonly pending = new Map<string, Pending>();
  private readonly liveness: NodeJS.Timeout;
  private readonly log: Logger;
  /** Messages not about one job (hello, heartbeats, replies), handled in order. */
  private chain: Promise<void> = Promise.resolve();
  /**
   * The messages of each job with some still being handled: a job's chunks and its end are
   * handled in order, while other jobs' messages do not wait behind its file writes.
   */
  private readonly jobChains = new Map<string, Promise<void>>();
  /** Set once the connection is closed for bad input: nothing more it sent is handled. */
  private refused = false;
  private versionRefused = false;
  /** The offset a resume was last asked from after a gap, per job (one request per offset). */
  private readonly gapResumes = new Map<string, number>();

  constructor(
    readonly terminal: TerminalRecord,
    private readonly ws: WebSocket,
    private readonly deps: SessionDeps,
  ) {
    this.log = deps.logger.child({ terminalId: terminal.id });
    // ws closes a connection whose message passes maxPayload with 1009 and no reason (its
    // receiver calls close(code) alone); give the reason, so the agent's log says what happened.
    const closeSocket = ws.close.bind(ws);
    ws.close = (code?: number, reason?: string | Buffer) =>
      closeSocket(code, reason ?? (code === 1009 ? TOO_BIG_REASON : undefined));
    ws.on('message', (data, isBinary) => {
      this.lastMessageAt = Date.now();
      let message: Received;
      try {
        message = this.decode(data as Buffer, isBinary);
      } catch (err) {
        // In turn, so that what came before a bad message is still handled first.
        this.chain = this.chain.then(() => this.protocolError(err));
        return;
      }
      const jobId = message.kind === 'body' ? message.frame.jobId : jobIdOf(message.message);
      if (jobId === undefined || this.state === 'awaiting-hello') {
        this.chain = this.chain
          .then(() => this.receive(message))
          .catch((err: unknown) => this.protocolError(err));
        return;
      }
      // A job's first message waits for what came before it on the session's chain (the hello).
      const run = (this.jobChains.get(jobId) ?? this.chain)
        .then(() => this.receive(message))
        .catch((err: unknown) => this.protocolError(err));
      this.jobChains.set(jobId, run);
      void run.then(() => {
        if (this.jobChains.get(jobId) === run) this.jobChains.delete(jobId);
      });
    });
    ws.on('close', () => this.closed());
    ws.on('error', (err) => this.log.warn('agent socket error', { err: err.message }));
    const helloBy = Date.now() + 10_000;
    this.liveness = setInterval(
      () => {
        const silentFor = Date.now() - this.lastMessageAt;
        if (this.state === 'awaiting-hello' && Date.now() > helloBy) {
          this.close(CLOSE_CODES.protocolError, 'no hello within 10 s');
        } else if (silentFor > deps.heartbeatMs * 2.5) {
          this.log.warn('terminal went quiet; closing its connection', { silentFor });
          ws.terminate();
        }
      },
      Math.min(deps.heartbeatMs, 5000),
    );
    this.liveness.unref();
  }

  /** Sends a control message; false when the socket is not open. */
  send(message: ControlMessage): boolean {
    if (this.ws.readyState !== this.ws.OPEN) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  /** Sends a binary frame; resolves false when the socket is not open or the send failed. */
  sendBinary(frame: Buffer): Promise<boolean> {
    if (this.ws.readyState !== this.ws.OPEN) return Promise.resolve(false);
    return new Promise((resolve) => this.ws.send(frame, { binary: true }, (err) => resolve(!err)));
  }

  /** Closes the connection with a code and a reason (at most 123 bytes by the WebSocket rules). */
  close(code: number, reason: string): void {
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) {
      this.ws.close(code, Buffer.from(reason).subarray(0, 123).toString());
    }
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }

  /** Sends a request (logs, test) and waits for the reply with the same id. */
  request(
    message: ControlMessage & { requestId: string },
    timeoutMs: number,
  ): Promise<AgentMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(message.requestId);
        reject(new OutpostError('TERMINAL_OFFLINE', 'the terminal did not answer in time'));
      }, timeoutMs);
      this.pending.set(message.requestId, { resolve, timer });
      if (!this.send(message)) {
        clearTimeout(timer);
        this.pending.delete(message.requestId);
        reject(new OutpostError('TERMINAL_OFFLINE', 'the terminal is not connected'));
      }
    });
  }

  /** Calls back once the socket is closed (at once when it already is). */
  onceClosed(callback: () => void): void {
    if (this.ws.readyState === this.ws.CLOSED) callback();
    else this.ws.once('close', () => callback());
  }

  /** Drops the socket without a closing handshake. */
  terminate(): void {
    this.ws.terminate();
  }

  /** Resolves once every message received so far was handled (for a graceful stop). */
  async settled(): Promise<void> {
    await Promise.all([this.chain, ...this.jobChains.values()]);
  }

  private protocolError(err: unknown): void {
    if (this.refused) return;
    this.refused = true;
    const e = err instanceof OutpostError ? err : new OutpostError('INTERNAL', String(err));
    if (e.code === 'INTERNAL') {
      this.log.error('closing agent connection on an internal error', { err });
    } else {
      this.log.warn('closing agent connection on a protocol error', {
        code: e.code,
        reason: e.message,
      });
    }
    this.close(CLOSE_CODES.protocolError, `${e.code}: ${e.message}`);
  }

  /** Checks a message against the protocol, before it is queued to be handled. */
  private decode(data: Buffer, isBinary: boolean): Received {
    if (!isBinary) {
      return { kind: 'json', message: parseFrame(agentMessageSchema, data.toString('utf8')) };
    }
    const frame = decodeBodyFrame(data);
    if (frame.kind !== FRAME_KIND.responseBody) {
      throw new OutpostError('PROTOCOL_ERROR', 'a terminal may only send response body frames');
    }
    return { kind: 'body', frame };
  }

  private async receive(received: Received): Promise<void> {
    // Messages that arrived before the socket closed are still handled (results, body bytes and
    // acks are all idempotent); those of a connection refused for bad input are not.
    if (this.refused || this.versionRefused) return;
    if (received.kind === 'body') {
      if (this.state === 'awaiting-hello')
        throw new OutpostError('PROTOCOL_ERROR', 'binary frame before hello');
      const { frame } = received;
      if (!this.ownsOpenJob(frame.jobId)) return;
      await this.chunk(frame.jobId, frame.offset, frame.data);
      return;
    }
    const { message } = received;
    if (this.state === 'awaiting-hello' && message.type !== 'hello') {
      throw new OutpostError('PROTOCOL_ERROR', `expected hello, got ${message.type}`);
    }
    await this.handle(message);
  }

  /**
   * True when the job belongs to this terminal and is still open. A final job's late messages
   * are dropped (stale after a cancel or timeout); a job of another terminal, or one that does
   * not exist, is a protocol error: a terminal only ever hears of its own jobs.
   */
  private ownsOpenJob(jobId: string): boolean {
    if (this.deps.jobs.isInFlightOn(this.terminal.id, jobId)) return true;
    const job = getJobOwnerState(this.deps.db, jobId);
    if (job?.terminalId !== this.terminal.id) {
      throw new OutpostError('PROTOCOL_ERROR', `job ${jobId} is not a job of this terminal`);
    }
    return !isFinalState(job.state);
  }

  /** Stores a body chunk and grants credit; a gap asks the agent to resend from what is held. */
  private async chunk(jobId: string, offset: number, data: Buffer): Promise<void> {
    let confirmed: number;
    try {
      confirmed = await this.deps.jobs.onChunk(jobId, offset, data);
    } catch (err) {
      if (!(err instanceof OutpostError) || err.details.gap !== true) throw err;
      // Frames sent before a reconnect's resume can arrive late: ask once per held offset.
      const held = err.details.held as number;
      if (this.gapResumes.get(jobId) === held) return;
      this.gapResumes.set(jobId, held);
      this.log.warn('body chunk past what is held; asking the terminal to resend', {
        jobId,
        offset,
        held,
      });
      this.send({ type: 'job.resume', jobId, offset: held });
      return;
    }
    this.gapResumes.delete(jobId);
    this.send({ type: 'body.credit', jobId, confirmedBytes: confirmed });
  }

  private async handle(message: AgentMessage): Promise<void> {
    const { jobs, db } = this.deps;
    switch (message.type) {
      case 'hello':
        return this.hello(message);
      case 'heartbeat':
        recordHeartbeat(db, this.terminal.id);
        this.send({
          type: 'heartbeat.ack',
          sentAt: message.sentAt,
          serverTime: new Date().toISOString(),
        });
        return;
      case 'job.running':
        if (this.ownsOpenJob(message.jobId)) jobs.onRunning(message.jobId);
        return;
      case 'job.head':
        if (this.ownsOpenJob(message.jobId))
          jobs.onHead(message.jobId, message.status, message.headers);
        return;
      case 'job.end': {
        const jobId = message.jobId;
        this.gapResumes.delete(jobId);
        if (this.ownsOpenJob(jobId)) {
          const held = jobs.spool.size(jobId);
          if (message.state === 'succeeded' && held < message.bodyBytes) {
            // Bytes went missing on the way (a reconnect): ask for them again before ending.
            this.send({ type: 'job.resume', jobId, offset: held });
            return;
          }
          await jobs.onEnd(jobId, {
            state: message.state,
            error: message.error as never,
            bodyBytes: message.bodyBytes,
          });
        }
        this.send({ type: 'job.ack', jobId: message.jobId });
        return;
      }
      case 'accounts.status':
        for (const a of message.accounts) recordTerminalAccountStatus(db, this.terminal.id, a);
        return;
      case 'logs.reply':
      case 'test.reply': {
        const p = this.pending.get(message.requestId);
        if (p) {
          clearTimeout(p.timer);
          this.pending.delete(message.requestId);
          p.resolve(message);
        }
        return;
      }
      case 'body.credit':
        // The agent consumed request body bytes of an upload: more may be sent.
        if (this.ownsOpenJob(message.jobId))
          jobs.requestUploads?.credit(message.jobId, message.confirmedBytes);
        return;
      default:
        throw new OutpostError('PROTOCOL_ERROR', 'unexpected message');
    }
  }

  private async hello(message: Extract<AgentMessage, { type: 'hello' }>): Promise<void> {
    // A hello handled after its socket closed must not requeue jobs or register a dead session.
    if (this.state === 'closed') return;
    if (this.state !== 'awaiting-hello')
      throw new OutpostError('PROTOCOL_ERROR', 'hello sent twice');
    const { db, jobs, accounts } = this.deps;
    if (
      message.protocolVersion < MIN_PROTOCOL_VERSION ||
      message.protocolVersion > PROTOCOL_VERSION
    ) {
      this.log.warn('refused an agent of an unsupported protocol version', {
        version: message.protocolVersion,
      });
      this.close(
        CLOSE_CODES.versionUnsupported,
        `protocol ${message.protocolVersion} unsupported: ` +
          `install an agent speaking ${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION}`,
      );
      this.versionRefused = true;
      this.state = 'closed';
      return;
    }
    recordAgentHello(db, this.terminal.id, {
      version: message.agentVersion,
      protocolVersion: message.protocolVersion,
      hostname: message.hostname,
      os: message.os,
      startedAt: message.startedAt,
    });
    this.agentConcurrency = message.maxConcurrency;
    this.send({
      type: 'welcome',
      protocolVersion: PROTOCOL_VERSION,
      terminalId: this.terminal.id,
      heartbeatMs: this.deps.heartbeatMs,
      serverTime: new Date().toISOString(),
      maxConcurrency: this.terminal.maxConcurrency,
    });
    this.send({
      type: 'accounts.sync',
      accounts: accountsOfTerminal(db, this.terminal.id).map((a) => accounts.descriptor(a)),
    });
    const held = new Set<string>();
    for (const j of message.jobs) {
      held.add(j.jobId);
      const job = getJobById(db, j.jobId);
      if (!job || job.terminalId !== this.terminal.id || isFinalState(job.state)) {
        // Final or unknown here: the agent may forget it (and abort it if it still runs).
        if (j.state === 'running') this.send({ type: 'job.cancel', jobId: j.jobId });
        this.send({ type: 'job.ack', jobId: j.jobId });
        continue;
      }
      this.send({ type: 'job.resume', jobId: j.jobId, offset: jobs.spool.size(j.jobId) });
    }
    for (const job of jobs.inFlight(this.terminal.id)) {
      if (held.has(job.id)) continue;
      if (job.state === 'dispatched') {
        // The start never reached the agent's journal: sending it again cannot run it twice.
        jobs.requeue(this.terminal.id, job.id);
      } else {
        jobs.finish(
          job.id,
          'failed',
          {
            code: 'AGENT_LOST_JOB',
            message: 'the terminal no longer knows this job (its data was reset)',
          },
          null,
        );
      }
    }
    this.state = 'ready';
    this.log.info('terminal connected', {
      version: message.agentVersion,
      hostname: message.hostname,
    });
    this.deps.onReady(this);
  }

  private closed(): void {
    if (this.state === 'closed' && this.pending.size === 0) {
      this.deps.onClosed(this);
      clearInterval(this.liveness);
      return;
    }
    this.state = 'closed';
    clearInterval(this.liveness);
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    this.log.info('terminal disconnected');
    this.deps.onClosed(this);
  }
}

/** Largest message a terminal may send. */
export const MAX_AGENT_PAYLOAD = CHANNEL_LIMITS.maxPayloadBytes;

/** A message as decoded from the wire. */
type Received = { kind: 'json'; message: AgentMessage } | { kind: 'body'; frame: BodyFrame };

/** The job a message is about, or undefined for a message of the whole session. */
function jobIdOf(message: AgentMessage): string | undefined {
  switch (message.type) {
    case 'job.running':
    case 'job.head':
    case 'job.end':
    case 'body.credit':
      return message.jobId;
    default:
      return undefined;
  }
}
