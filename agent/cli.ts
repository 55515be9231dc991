#!/usr/bin/env node
/** `terminal-agent`: enroll, run, status, accounts, allow, service, doctor. */
import { readFileSync } from 'node:fs';

import { Command, InvalidArgumentError, Option } from 'commander';
import { Agent as UndiciAgent, ProxyAgent } from 'undici';

import { OutpostError } from '../shared/errors.js';
import { createLogger, RecentLinesTransport, registerSecret } from '../shared/logger.js';
import { PRODUCT_VERSION } from '../shared/version.js';
import { AgentDaemon } from './agent-daemon.js';
import { AgentStore } from './agent-store.js';
import { defaultDataDir } from './data-dir.js';
import { enroll, enrollmentToken, parseControlPlaneUrl } from './enroll.js';
import { fileLogTransport } from './log-file.js';
import { ConnectProxyAgent, proxyFor } from './proxy-agent.js';
import { registerAccountCommands, registerAllowCommands } from './local-commands.js';
import { registerServiceCommands } from './service/service-command.js';
import { formatStatus, statusReport } from './status-report.js';
import { runDoctor } from './doctor.js';

const dataDirOption = () =>
  new Option('--data-dir <dir>', 'where the agent keeps its state').default(
    undefined,
    'see README',
  );
const caOption = () =>
  new Option('--ca <file>', 'PEM bundle of a private CA to trust for the control plane');
const proxyOption = () =>
  new Option('--proxy <url>', 'HTTP proxy for the control plane (default: HTTPS_PROXY / NO_PROXY)');

function dataDir(opts: { dataDir?: string }): string {
  return opts.dataDir ?? defaultDataDir();
}

function readCa(file: string | undefined): string[] | undefined {
  if (!file) return undefined;
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    throw new OutpostError(
      'VALIDATION_FAILED',
      `--ca ${file} cannot be read: ${(err as Error).message}`,
      { field: 'ca' },
    );
  }
  const certs = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!certs)
    throw new OutpostError('VALIDATION_FAILED', `--ca ${file} holds no PEM certificate`, {
      field: 'ca',
    });
  return certs;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000)
    throw new InvalidArgumentError('give an integer from 1 to 1000');
  return n;
}

const program = new Command()
  .name('terminal-agent')
  .description(
    'Outpost terminal agent: runs REST requests inside this network for the control plane',
  )
  .version(PRODUCT_VERSION, '-v, --version')
  .showHelpAfterError();

program
  .command('enroll')
  .description('enroll this machine as a terminal')
  .requiredOption('--url <url>', "the control plane's base HTTP(S) URL")
  .option(
    '--token <token>',
    'the one-time enrollment token (default: OUTPOST_ENROLLMENT_TOKEN, which keeps it out of ps)',
  )
  .addOption(dataDirOption())
  .option('--name <name>', 'a name for this terminal')
  .option('--force', 'enroll again even if this data dir is enrolled', false)
  .addOption(caOption())
  .addOption(proxyOption())
  .action(
    async (opts: {
      url: string;
      token?: string;
      dataDir?: string;
      name?: string;
      force: boolean;
      ca?: string;
      proxy?: string;
    }) => {
      const token = enrollmentToken(opts.token);
      registerSecret(token);
      const url = parseControlPlaneUrl(opts.url);
      const ca = readCa(opts.ca);
      const proxy = proxyFor(url, opts.proxy);
      const dispatcher = proxy
        ? new ProxyAgent({ uri: proxy.toString(), requestTls: { ca } })
        : ca
          ? new UndiciAgent({ connect: { ca } })
          : undefined;
      const store = new AgentStore(dataDir(opts));
      try {
        const result = await enroll(store, {
          url: url.toString(),
          token,
          name: opts.name,
          force: opts.force,
          dispatcher,
        });
        process.stdout.write(
          `Enrolled as terminal ${result.terminalId} (${result.name}).\nData dir: ${store.dataDir}\n`,
        );
      } finally {
        store.close();
        await dispatcher?.close();
      }
    },
  );

program
  .command('run')
  .description('run the agent in the foreground (what the service runs)')
  .addOption(dataDirOption())
  .option(
    '--log-level <level>',
    'error, warn, info or debug',
    process.env.OUTPOST_LOG_LEVEL ?? 'info',
  )
  .option('--log-format <format>', 'json or pretty (default: pretty on a terminal)')
  .option('--max-concurrency <n>', 'jobs run at once, at most', positiveInt, 16)
  .option('--drain-seconds <n>', 'on SIGTERM, how long running jobs may finish', positiveInt, 20)
  .addOption(caOption())
  .addOption(proxyOption())
  .action(
    async (opts: {
      dataDir?: string;
      logLevel: string;
      logFormat?: string;
      maxConcurrency: number;
      drainSeconds: number;
      ca?: string;
      proxy?: string;
    }) => {
      const store = new AgentStore(dataDir(opts));
      const identity = store.identitySummary();
      if (!identity) {
        store.close();
        process.stderr.write(
          `error NOT_ENROLLED: ${store.dataDir} is not enrolled: run terminal-agent enroll first\n`,
        );
        process.exit(2);
      }
      const recentLines = new RecentLinesTransport(2000);
      const logger = createLogger({
        level: opts.logLevel,
        format: (opts.logFormat ?? (process.stdout.isTTY ? 'pretty' : 'json')) as 'json' | 'pretty',
        stream: process.stdout,
        extraTransports: [recentLines, fileLogTransport(store.dataDir)],
        component: 'agent',
      });
      const target = new URL(identity.controlPlaneUrl);
      const proxy = proxyFor(target, opts.proxy);
      const ca = readCa(opts.ca);
      const daemon = new AgentDaemon({
        store,
        logger,
        recentLines,
        maxConcurrency: opts.maxConcurrency,
        httpAgent: proxy
          ? new ConnectProxyAgent(proxy, target.protocol === 'https:', {})
          : undefined,
        ca,
        drainMs: opts.drainSeconds * 1000,
        // Exit 2: the service unit does not restart on it; the terminal needs a new enrollment.
        onRevoked: () => stopWith(2),
      });
      daemon.start();
      logger.info('agent started', {
        terminalId: identity.terminalId,
        version: PRODUCT_VERSION,
        proxy: proxy?.host ?? null,
      });
      let stopping = false;
      const stopWith = (code: number) => {
        if (stopping) return;
        stopping = true;
        daemon.stop().then(
          () => {
            store.close();
            process.exit(code);
          },
          (err: unknown) => {
            logger.error('error while stopping', { err });
            process.exit(1);
          },
        );
      };
      const stop = (signal: string) => {
        logger.info('signal received', { signal });
        stopWith(0);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    },
  );

program
  .command('status')
  .description('the state of the local agent (exit 0 connected, 1 not, 2 not enrolled)')
  .addOption(dataDirOption())
  .option('--json', 'one JSON object for scripts', false)
  .action((opts: { dataDir?: string; json: boolean }) => {
    const store = new AgentStore(dataDir(opts));
    const report = statusReport(store);
    store.close();
    process.stdout.write(opts.json ? `${JSON.stringify(report)}\n` : formatStatus(report));
    process.exitCode = !report.enrolled ? 2 : report.connected ? 0 : 1;
  });

registerAccountCommands(program, dataDirOption, dataDir);
registerAllowCommands(program, dataDirOption, dataDir);

program
  .command('doctor')
  .description(
    'check DNS, TCP and TLS to the control plane and to each account, clock skew, and permissions',
  )
  .addOption(dataDirOption())
  .addOption(caOption())
  .addOption(proxyOption())
  .action(async (opts: { dataDir?: string; ca?: string; proxy?: string }) => {
    const store = new AgentStore(dataDir(opts));
    try {
      const ok = await runDoctor(store, {
        ca: readCa(opts.ca),
        proxyFlag: opts.proxy,
        out: process.stdout,
      });
      process.exitCode = ok ? 0 : 1;
    } finally {
      store.close();
    }
  });

registerServiceCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const e =
    err instanceof OutpostError ? err : new OutpostError('INTERNAL', (err as Error).message);
  process.stderr.write(`error ${e.code}: ${e.message}\n`);
  process.exit(e.code === 'NOT_ENROLLED' ? 2 : 1);
});
