#!/usr/bin/env node
/** `control-plane`: start the control plane, create API keys, seal secrets for a terminal. */
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { Command, InvalidArgumentError } from 'commander';

import { sealSecrets } from '../shared/crypto/sealing.js';
import { isErrorCode, OutpostError } from '../shared/errors.js';
import { createLogger } from '../shared/logger.js';
import { PRODUCT_VERSION } from '../shared/version.js';
import { ControlPlane } from './control-plane.js';
import { loadMasterKeys } from './secrets/master-key.js';
import { rotateMasterKey } from './secrets/rotate-master-key.js';
import { openDatabase } from './store/database.js';
import { createApiKey, ensureWorkspace } from './store/workspaces.js';

const DEFAULT_DATA_DIR = path.join('data', 'control-plane');

function portOption(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('give a port from 0 to 65535');
  return n;
}

const program = new Command()
  .name('control-plane')
  .description('Outpost control plane')
  .version(PRODUCT_VERSION)
  .showHelpAfterError();

program
  .command('start')
  .description('run the control plane')
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--port <port>', 'port to listen on', portOption, 8080)
  .option('--data-dir <dir>', 'where the store lives', DEFAULT_DATA_DIR)
  .option(
    '--log-level <level>',
    'error, warn, info or debug',
    process.env.OUTPOST_LOG_LEVEL ?? 'info',
  )
  .action(async (opts: { host: string; port: number; dataDir: string; logLevel: string }) => {
    const logger = createLogger({
      level: opts.logLevel,
      format: process.stderr.isTTY ? 'pretty' : 'json',
      component: 'control-plane',
    });
    const cp = new ControlPlane({
      host: opts.host,
      port: opts.port,
      dataDir: opts.dataDir,
      logger,
      allowPrivateTargets: process.env.OUTPOST_ALLOW_PRIVATE_TARGETS === '1',
      heartbeatMs: envInt('OUTPOST_HEARTBEAT_MS'),
      bodyRetentionHours: envInt('OUTPOST_BODY_RETENTION_HOURS'),
      enrollmentTtlMs: envInt('OUTPOST_ENROLLMENT_TTL_MS'),
      maxQueuedPerTerminal: envInt('OUTPOST_MAX_QUEUED_PER_TERMINAL'),
    });
    if (cp.bootstrapKey) process.stdout.write(`Admin API key: ${cp.bootstrapKey}\n`);
    let url: string;
    try {
      url = await cp.listen();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      throw new OutpostError(
        'UNAVAILABLE',
        `port ${opts.port} on ${opts.host} is already in use: stop what listens there,` +
          ' or pick another port with --port (0 picks a free one)',
        {},
        err,
      );
    }
    process.stdout.write(`Listening on ${url}\n`);
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info('stopping', { signal });
      cp.close().then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error('error while stopping', { err });
          process.exit(1);
        },
      );
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });

const keys = program.command('keys').description('API keys');
keys
  .command('create')
  .description('print a new API key for a workspace (created when missing)')
  .requiredOption('--workspace <name>', 'workspace name')
  .option('--data-dir <dir>', 'where the store lives', DEFAULT_DATA_DIR)
  .action((opts: { workspace: string; dataDir: string }) => {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(opts.workspace)) {
      throw new OutpostError(
        'VALIDATION_FAILED',
        'workspace names are 1-100 letters, digits, ".", "_" or "-"',
      );
    }
    const db = openDatabase(opts.dataDir);
    const key = createApiKey(db, ensureWorkspace(db, opts.workspace));
    db.close();
    process.stdout.write(`${key}\n`);
  });

program
  .command('rotate-master-key')
  .description(
    're-encrypt stored secrets and tokens with OUTPOST_MASTER_KEY (old values are read with ' +
      'OUTPOST_PREVIOUS_MASTER_KEYS); run it with the control plane stopped or running',
  )
  .option('--data-dir <dir>', 'where the store lives', DEFAULT_DATA_DIR)
  .action((opts: { dataDir: string }) => {
    const db = openDatabase(opts.dataDir);
    try {
      const report = rotateMasterKey(db, loadMasterKeys(opts.dataDir));
      process.stdout.write(
        `Re-encrypted ${report.reencrypted} values; ${report.current} already used the current key.\n`,
      );
    } finally {
      db.close();
    }
  });

program
  .command('seal')
  .description(
    "seal secrets (a JSON object on stdin) to a terminal's encryption key; prints the JWE",
  )
  .requiredOption('--terminal <id>', 'terminal id')
  .option('--url <url>', 'control plane URL to fetch the key from', 'http://127.0.0.1:8080')
  .option('--api-key <key>', 'API key (default: $OUTPOST_API_KEY)')
  .option(
    '--key-file <file>',
    "the terminal's encryption key as a JWK file, instead of fetching it",
  )
  .option('--account <id>', 'bind the sealed secrets to this account id')
  .action(
    async (opts: {
      terminal: string;
      url: string;
      apiKey?: string;
      keyFile?: string;
      account?: string;
    }) => {
      const input = readFileSync(0, 'utf8');
      let secrets: unknown;
      try {
        secrets = JSON.parse(input);
      } catch {
        throw new OutpostError(
          'INVALID_JSON',
          'stdin must be a JSON object of secret fields, e.g. {"token":"..."}',
        );
      }
      if (!secrets || typeof secrets !== 'object' || Array.isArray(secrets)) {
        throw new OutpostError('VALIDATION_FAILED', 'stdin must be a JSON object of secret fields');
      }
      let jwk: Record<string, unknown>;
      if (opts.keyFile)
        jwk = JSON.parse(readFileSync(opts.keyFile, 'utf8')) as Record<string, unknown>;
      else {
        const apiKey = opts.apiKey ?? process.env.OUTPOST_API_KEY;
        if (!apiKey)
          throw new OutpostError('UNAUTHENTICATED', 'give --api-key or set OUTPOST_API_KEY');
        jwk = await fetchEncryptionKey(opts.url, opts.terminal, apiKey);
      }
      process.stdout.write(
        `${await sealSecrets(jwk, secrets as Record<string, unknown>, opts.account)}\n`,
      );
    },
  );

/**
 * A terminal's encryption key from the API. An error answer keeps the server's own code; a
 * control plane that cannot be reached is UNAVAILABLE, naming the URL and the reason.
 */
async function fetchEncryptionKey(
  url: string,
  terminal: string,
  apiKey: string,
): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    res = await fetch(new URL(`/v1/terminals/${encodeURIComponent(terminal)}`, url), {
      headers: { authorization: `Bearer ${apiKey}` },
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const reason = cause?.code ?? cause?.message ?? (err as Error).message;
    throw new OutpostError(
      'UNAVAILABLE',
      `could not reach the control plane at ${url}: ${reason}`,
      {},
      err,
    );
  }
  const body = (await res.json().catch(() => ({}))) as {
    encryptionKey?: Record<string, unknown>;
    error?: { code?: string; message?: string };
  };
  if (res.ok && body.encryptionKey) return body.encryptionKey;
  const code = body.error?.code;
  throw new OutpostError(
    code !== undefined && isErrorCode(code) ? code : res.ok ? 'NOT_FOUND' : 'UNAVAILABLE',
    body.error?.message ??
      (res.ok
        ? `terminal ${terminal} has no encryption key: enroll it first`
        : `the control plane at ${url} answered HTTP ${res.status}`),
  );
}

function envInt(name: string): number | undefined {
  const v = process.env[name];
  return v === undefined ? undefined : Number(v);
}

program.parseAsync(process.argv).catch((err: unknown) => {
  const e =
    err instanceof OutpostError ? err : new OutpostError('INTERNAL', (err as Error).message);
  process.stderr.write(`error ${e.code}: ${e.message}\n`);
  process.exit(e.code === 'INTERNAL' ? 1 : 2);
});
