/**
 * `terminal-agent run`: the store, the held accounts, the connection loop and the job runner,
 * wired together. Lifecycle: starting → running → draining → stopped. SIGTERM lets running
 * jobs finish up to a deadline, reports the rest, and exits.
 */
import { OutpostError } from '../shared/errors.js';
import type { Logger, RecentLinesTransport } from '../shared/logger.js';
import { decodeBodyFrame, FRAME_KIND } from '../shared/protocol/binary-frames.js';
import type { ControlMessage } from '../shared/protocol/messages.js';
import { PRODUCT_VERSION, PROTOCOL_VERSION } from '../shared/version.js';
import { AccountRegistry } from './account-registry.js';
import { agentProcessAlive } from './agent-process.js';
import type { AgentStore } from './agent-store.js';
import { AgentConnection, machineFacts } from './connection.js';
import { runConnectionTest } from './connection-test.js';
import { JobRunner } from './job-runner.js';
import type { Agent as HttpAgent } from 'node:http';

/** Options of the daemon, compiled once by the CLI. */
export interface DaemonOptions {
  store: AgentStore;
  logger: Logger;
  recentLines: RecentLinesTransport;
  maxConcurrency: number;
  httpAgent?: HttpAgent;
  ca?: string[];
  drainMs: number;
  /** Called once the control plane revoked this terminal (the connection loop has stopped). */
  onRevoked?(error: string): void;
}

/** The daemon's lifecycle state. */
export type DaemonState = 'starting' | 'running' | 'draining' | 'stopped';

/** The running agent. */
export class AgentDaemon {
  state: DaemonState = 'starting';
  readonly connection: AgentConnection;
  readonly runner: JobRunner;
  private readonly accounts: AccountRegistry;
  private readonly startedAt = new Date();
  private messageChain: Promise<void> = Promise.resolve();
  private pruneTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: DaemonOptions) {
    const { store, logger } = options;
    const identity = store.identity();
    if (!identity)
      throw new OutpostError(
        'NOT_ENROLLED',
        'this data dir is not enrolled: run terminal-agent enroll first',
      );
    this.accounts = new AccountRegistry(store, identity, logger.child({ component: 'accounts' }));
    this.connection = new AgentConnection({
      identity,
      logger,
      httpAgent: options.httpAgent,
      ca: options.ca,
      hello: () => ({
        type: 'hello',
        protocolVersion: PROTOCOL_VERSION,
        agentVersion: PRODUCT_VERSION,
        ...machineFacts(),
        startedAt: this.startedAt.toISOString(),
        maxConcurrency: options.maxConcurrency,
        jobs: this.runner.heldJobs(),
      }),
      onMessage: (m) => {
        // Account changes are applied in order; job messages go straight to the runner.
        this.messageChain = this.messageChain
          .then(() => this.onMessage(m))
          .catch((err: unknown) => {
            logger.error('could not handle a control plane message', { type: m.type, err });
          });
      },
      // Binary frames follow the control messages in order: a request body's first frame must not
      // overtake the job.start it belongs to.
      onBinary: (data) => {
        this.messageChain = this.messageChain.then(() => this.onBinary(data));
      },
      onState: (s) => {
        if (s.connected) this.runner.connectionChanged();
        store.setStatus({
          connected: s.connected ? 1 : 0,
          connectedSince: s.since?.toISOString() ?? null,
          ...(s.error ? { lastError: s.error, lastErrorAt: new Date().toISOString() } : {}),
        });
        if (!s.connected) this.runner.connectionChanged();
      },
      onHeartbeat: (at) => store.setStatus({ lastHeartbeatAt: at.toISOString() }),
      onRevoked: (error) => options.onRevoked?.(error),
    });
    this.runner = new JobRunner({
      store,
      accounts: this.accounts,
      channel: this.connection,
      logger: logger.child({ component: 'jobs' }),
      maxConcurrency: options.maxConcurrency,
    });
  }

  /** Starts the daemon. */
  start(): void {
    const { store } = this.options;
    const holder = store.claimRun(process.pid, this.startedAt.toISOString(), agentProcessAlive);
    if (holder !== null) {
      throw new OutpostError(
        'CONFLICT',
        `another terminal-agent (pid ${holder}) is already running on ${store.dataDir}; stop it first`,
      );
    }
    store.setStatus({ version: PRODUCT_VERSION });
    this.runner.recover();
    this.connection.start();
    this.state = 'running';
    this.pruneTimer = setInterval(
      () => store.journal.prune(new Date(Date.now() - 7 * 86_400_000).toISOString()),
      3600_000,
    );
    this.pruneTimer.unref();
  }

  private async onMessage(message: ControlMessage): Promise<void> {
    switch (message.type) {
      case 'accounts.sync': {
        const reports = await this.accounts.sync(message.accounts);
        this.connection.send({ type: 'accounts.status', accounts: reports });
        return;
      }
      case 'account.upsert': {
        const report = await this.accounts.upsert(message.account);
        this.connection.send({ type: 'accounts.status', accounts: [report] });
        return;
      }
      case 'account.remove':
        this.accounts.remove(message.accountId);
        return;
      case 'logs.request': {
        const lines = this.options.recentLines.query({
          since: message.since ? new Date(message.since) : undefined,
          level: message.level ?? undefined,
          limit: message.limit,
        });
        this.connection.send({ type: 'logs.reply', requestId: message.requestId, lines });
        return;
      }
      case 'test.request': {
        const hops = await runConnectionTest(
          this.accounts,
          this.runner.executor,
          message.accountId,
        );
        this.connection.send({ type: 'test.reply', requestId: message.requestId, hops });
        return;
      }
      case 'welcome':
      case 'heartbeat.ack':
        return;
      default:
        this.runner.handle(message);
    }
  }

  private onBinary(data: Buffer): void {
    try {
      const frame = decodeBodyFrame(data);
      if (frame.kind === FRAME_KIND.requestBody)
        this.runner.requestBodyChunk(frame.jobId, frame.offset, frame.data);
    } catch (err) {
      this.options.logger.warn('ignored a malformed binary frame', {
        reason: (err as Error).message,
      });
    }
  }

  /** Graceful stop: drain jobs up to the deadline, then close the connection and the store. */
  async stop(): Promise<void> {
    if (this.state === 'draining' || this.state === 'stopped') return;
    this.state = 'draining';
    this.options.logger.info('stopping: letting running jobs finish', {
      running: this.runner.runningCount,
    });
    await this.runner.drain(this.options.drainMs);
    await this.connection.stop();
    await this.runner.close();
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    this.options.store.setStatus({
      connected: 0,
      connectedSince: null,
      stoppedAt: new Date().toISOString(),
    });
    this.state = 'stopped';
  }
}
