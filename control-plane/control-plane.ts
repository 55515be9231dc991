/**
 * The control plane process: the store, the HTTP API, the agent channel, the job service and
 * the direct runner, wired together, with an explicit start and a graceful stop.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import Fastify, { type FastifyInstance } from 'fastify';

import { testAccountConnection } from '../shared/executor/connection-test.js';
import type { Logger } from '../shared/logger.js';
import { PRODUCT_VERSION } from '../shared/version.js';
import { AccountService } from './accounts/account-service.js';
import { ApiKeyAuth } from './api/api-auth.js';
import { pageOf, type ApiContext } from './api/api-context.js';
import {
  acceptEmptyJsonBodies,
  frameworkErrorHandler,
  installErrorHandling,
} from './api/http-errors.js';
import { accountRoutes } from './api/routes-accounts.js';
import { auditRoutes } from './api/routes-audit.js';
import { diagnosticRoutes } from './api/routes-diagnostics.js';
import { enrollRoutes } from './api/routes-enroll.js';
import { jobRoutes } from './api/routes-jobs.js';
import { uploadRoutes } from './api/routes-upload.js';
import { terminalRoutes } from './api/routes-terminals.js';
import { AgentGateway } from './gateway/agent-gateway.js';
import { startBodyRetention } from './jobs/body-retention.js';
import { BodySpool } from './jobs/body-spool.js';
import { ControlPlaneDirectRunner } from './jobs/direct-runner.js';
import { JobService } from './jobs/job-service.js';
import { RequestUploads } from './jobs/request-uploads.js';
import { loadMasterKeys } from './secrets/master-key.js';
import { openDatabase, type Db } from './store/database.js';
import { createApiKey, ensureWorkspace, isEmptyStore } from './store/workspaces.js';

/** Options of a control plane, compiled once by the CLI. */
export interface ControlPlaneOptions {
  host: string;
  port: number;
  dataDir: string;
  logger: Logger;
  allowPrivateTargets: boolean;
  heartbeatMs?: number;
  enrollmentTtlMs?: number;
  defaultConcurrency?: number;
  maxQueuedPerTerminal?: number;
  /** How long the bodies of ended jobs are kept (default 24 hours). */
  bodyRetentionHours?: number;
}

/** A running control plane. */
export class ControlPlane {
  readonly db: Db;
  readonly app: FastifyInstance;
  readonly gateway: AgentGateway;
  readonly jobs: JobService;
  private readonly direct: ControlPlaneDirectRunner;
  private stopRetention: (() => void) | undefined;
  /** The admin key created on the first start (only then). */
  readonly bootstrapKey: string | undefined;

  constructor(private readonly options: ControlPlaneOptions) {
    const { logger } = options;
    // The master key first: a malformed OUTPOST_MASTER_KEY must fail before the store and the
    // admin key file exist. Only the data dir is made, for a master.key created on first start.
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    const keys = loadMasterKeys(options.dataDir);
    this.db = openDatabase(options.dataDir);
    this.bootstrapKey = this.bootstrap();
    const accounts = new AccountService(this.db, keys);
    const spool = new BodySpool(path.join(options.dataDir, 'bodies'));
    this.jobs = new JobService(this.db, spool, logger.child({ component: 'jobs' }), {
      defaultConcurrency: options.defaultConcurrency ?? 16,
      maxQueuedPerTerminal: options.maxQueuedPerTerminal ?? 1000,
      maxDirectConcurrency: 64,
    });
    this.gateway = new AgentGateway(
      this.db,
      {
        jobs: this.jobs,
        accounts,
        logger: logger.child({ component: 'gateway' }),
        heartbeatMs: options.heartbeatMs ?? 15_000,
      },
      logger,
    );
    const uploads = new RequestUploads(this.gateway, logger.child({ component: 'uploads' }));
    this.jobs.requestUploads = uploads;
    this.direct = new ControlPlaneDirectRunner(
      this.db,
      accounts,
      this.jobs,
      keys,
      logger.child({ component: 'direct' }),
      options.allowPrivateTargets,
      (jobId) => uploads.streamFor(jobId),
    );
    const auth = new ApiKeyAuth(this.db);
    this.app = Fastify({
      logger: false,
      bodyLimit: 16 * 1024 * 1024,
      trustProxy: false,
      // Ids longer than any real one still reach the routes, which answer 404 after the key.
      routerOptions: { maxParamLength: 200 },
      frameworkErrors: frameworkErrorHandler((req) => auth.authenticate(req)),
    });
    acceptEmptyJsonBodies(this.app);
    const ctx: ApiContext = {
      db: this.db,
      logger,
      accounts,
      jobs: this.jobs,
      gateway: this.gateway,
      enrollmentTtlMs: options.enrollmentTtlMs ?? 3600_000,
      caller: (req) => auth.authenticate(req),
      presence: (id) => {
        const s = this.gateway.session(id);
        return { online: s !== undefined, connectedSince: s ? s.connectedAt.toISOString() : null };
      },
      page: pageOf,
      testDirect: (account) =>
        testAccountConnection(account, this.direct.executor, this.direct.policy),
    };
    installErrorHandling(this.app, logger);
    this.app.addHook('onResponse', async (req, reply) => {
      // Method, path without the query string, status and time; never headers or bodies.
      logger.info('api request', {
        method: req.method,
        path: req.routeOptions.url ?? req.url.split('?')[0],
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      });
    });
    this.app.get('/v1/health', async () => ({ ok: true, version: PRODUCT_VERSION }));
    enrollRoutes(this.app, ctx);
    terminalRoutes(this.app, ctx);
    accountRoutes(this.app, ctx);
    jobRoutes(this.app, ctx);
    uploadRoutes(this.app, ctx);
    auditRoutes(this.app, ctx);
    diagnosticRoutes(this.app, ctx);
  }

  /** On the first start with an empty store: the `default` workspace and its admin key. */
  private bootstrap(): string | undefined {
    if (!isEmptyStore(this.db)) return undefined;
    const ws = ensureWorkspace(this.db, 'default');
    const key = createApiKey(this.db, ws);
    writeFileSync(path.join(this.options.dataDir, 'admin-api-key'), `${key}\n`, { mode: 0o600 });
    return key;
  }

  /** Starts listening; resolves with the base URL. */
  async listen(): Promise<string> {
    this.jobs.start(this.gateway, this.direct);
    this.stopRetention = startBodyRetention(
      this.db,
      this.jobs.spool,
      path.join(this.options.dataDir, 'bodies'),
      (this.options.bodyRetentionHours ?? 24) * 3600_000,
      this.options.logger,
    );
    this.app.server.on('upgrade', (req, socket, head) =>
      this.gateway.handleUpgrade(req, socket, head),
    );
    await this.app.listen({ host: this.options.host, port: this.options.port });
    const address = this.app.server.address();
    const port = typeof address === 'object' && address ? address.port : this.options.port;
    const host = this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host;
    return `http://${host}:${port}`;
  }

  /** Stops accepting work, closes agent connections and the store. */
  async close(): Promise<void> {
    this.stopRetention?.();
    // API callers still waiting (`?wait=true`, a growing body) are cut after a deadline rather
    // than holding the stop forever; their jobs are kept and finish after the restart.
    const force = setTimeout(() => this.app.server.closeAllConnections(), 5000);
    await this.gateway.stop(5000);
    this.jobs.stop();
    await this.app.close();
    clearTimeout(force);
    await this.direct.executor.close();
    this.db.close();
  }
}
