/**
 * `terminal-agent accounts` and `terminal-agent allow`: what an operator at the site manages on
 * the terminal itself, in its local store, without the control plane.
 */
import type { Command, Option } from 'commander';

import { authHandler, checkAccountFields } from '../shared/auth/registry.js';
import { escapeControlCharacters } from '../shared/display-text.js';
import { OutpostError } from '../shared/errors.js';
import { createLogger } from '../shared/logger.js';
import { AccountRegistry } from './account-registry.js';
import { AgentStore } from './agent-store.js';
import { formatAllowEntry, parseAllowEntry } from './allow-entry.js';
import { readSecretValue } from './secret-input.js';
import { statusReport } from './status-report.js';

/** Registers `accounts list | set-secret | unset-secret`. */
export function registerAccountCommands(
  program: Command,
  dataDirOption: () => Option,
  dataDir: (opts: { dataDir?: string }) => string,
): void {
  const accounts = program.command('accounts').description('the accounts this terminal holds');
  accounts
    .command('list')
    .description('accounts and which secret fields are set (never their values)')
    .addOption(dataDirOption())
    .option('--json', 'JSON output', false)
    .action((opts: { dataDir?: string; json: boolean }) => {
      const store = new AgentStore(dataDir(opts));
      const list = statusReport(store).accounts;
      store.close();
      if (opts.json) process.stdout.write(`${JSON.stringify(list)}\n`);
      else if (list.length === 0) process.stdout.write('No accounts yet.\n');
      else {
        for (const a of list) {
          // Names and hosts came from the control plane: control characters are escaped.
          const secrets = a.secretFields.join(', ') || 'none set';
          const line = `${a.id}  ${a.name}  [${a.authType}]  ${a.host}  secrets: ${secrets}`;
          process.stdout.write(`${escapeControlCharacters(line)}\n`);
          for (const w of a.warnings) process.stdout.write(`    ! ${escapeControlCharacters(w)}\n`);
        }
      }
    });
  accounts
    .command('set-secret')
    .description(
      'set a secret on this machine only; the value is read from a prompt or stdin, never argv',
    )
    .argument('<account>', 'account id or name')
    .argument('<field>', 'secret field, e.g. password')
    .addOption(dataDirOption())
    .action(async (account: string, field: string, opts: { dataDir?: string }) => {
      const store = new AgentStore(dataDir(opts));
      try {
        const held = store
          .accounts()
          .filter((a) => a.descriptor.id === account || a.descriptor.name === account);
        if (held.length === 0)
          throw new OutpostError(
            'NOT_FOUND',
            `this terminal holds no account "${account}" (see: terminal-agent accounts list)`,
          );
        if (held.length > 1)
          throw new OutpostError(
            'CONFLICT',
            `several accounts are named "${account}": give the id`,
          );
        const d = held[0]!.descriptor;
        const value = await readSecretValue(field);
        const identity = store.identity()!;
        const registry = new AccountRegistry(store, identity, createLogger({ level: 'error' }));
        if (!authHandler(d.authType).secretFields.includes(field)) {
          throw new OutpostError(
            'INVALID_SECRET',
            `${field} is not a secret of authType ${d.authType}; accepted: ` +
              (authHandler(d.authType).secretFields.join(', ') || 'none'),
            { field: `secrets.${field}` },
          );
        }
        const merged = { ...store.accountSecrets(d.id), [field]: value };
        try {
          checkAccountFields(d.authType, d.settings, merged, true);
        } catch (err) {
          // Another field still missing is fine (secrets may be set one at a time, and it shows as
          // a warning); a problem with this very value is refused before anything is stored.
          const e = err instanceof OutpostError ? err : undefined;
          if (!e || e.details.field === undefined || e.details.field.startsWith(`secrets.${field}`))
            throw err;
        }
        store.setLocalSecret(d.id, field, value);
        const warnings = registry.refreshWarnings(d.id);
        process.stdout.write(
          `Set ${field} for ${d.name} (${d.id}) on this machine.${warnings.length ? ' Warnings:' : ''}\n`,
        );
        for (const w of warnings) process.stdout.write(`  ! ${w}\n`);
      } finally {
        store.close();
      }
    });

  accounts
    .command('unset-secret')
    .description(
      "remove a secret set on this machine, so that the control plane's value applies again",
    )
    .argument('<account>', 'account id or name')
    .argument('<field>', 'secret field, e.g. password')
    .addOption(dataDirOption())
    .action((account: string, field: string, opts: { dataDir?: string }) => {
      const store = new AgentStore(dataDir(opts));
      try {
        const held = store
          .accounts()
          .filter((a) => a.descriptor.id === account || a.descriptor.name === account);
        if (held.length !== 1) {
          throw new OutpostError('NOT_FOUND', `this terminal holds no single account "${account}"`);
        }
        const d = held[0]!.descriptor;
        if (!store.removeLocalSecret(d.id, field)) {
          throw new OutpostError('NOT_FOUND', `${field} is not set on this machine for ${d.name}`);
        }
        new AccountRegistry(
          store,
          store.identity()!,
          createLogger({ level: 'error' }),
        ).refreshWarnings(d.id);
        process.stdout.write(`Removed ${field} of ${d.name} (${d.id}) from this machine.\n`);
      } finally {
        store.close();
      }
    });
}

/** Registers `allow add | remove | list`. */
export function registerAllowCommands(
  program: Command,
  dataDirOption: () => Option,
  dataDir: (opts: { dataDir?: string }) => string,
): void {
  const allow = program
    .command('allow')
    .description("this terminal's own allowlist of extra destinations");
  allow
    .command('add')
    .argument('<destination>', 'HOST or HOST:PORT')
    .addOption(dataDirOption())
    .action((destination: string, opts: { dataDir?: string }) => {
      const entry = parseAllowEntry(destination);
      const store = new AgentStore(dataDir(opts));
      store.allow(entry.host, entry.port);
      store.close();
      process.stdout.write(
        `Allowed ${formatAllowEntry(entry)}${entry.port ? '' : ' (any port)'}\n`,
      );
    });
  allow
    .command('remove')
    .argument('<destination>', 'HOST or HOST:PORT')
    .addOption(dataDirOption())
    .action((destination: string, opts: { dataDir?: string }) => {
      const entry = parseAllowEntry(destination);
      const store = new AgentStore(dataDir(opts));
      const removed = store.disallow(entry.host, entry.port);
      store.close();
      if (!removed) throw new OutpostError('NOT_FOUND', `${destination} is not on the allowlist`);
      process.stdout.write(`Removed ${destination}\n`);
    });
  allow
    .command('list')
    .addOption(dataDirOption())
    .action((opts: { dataDir?: string }) => {
      const store = new AgentStore(dataDir(opts));
      const list = store.allowlist();
      store.close();
      if (list.length === 0)
        process.stdout.write(
          'The allowlist is empty: only the hosts of held accounts are reachable.\n',
        );
      // In the form `allow remove` takes back: IPv6 addresses in brackets when a port follows.
      for (const e of list)
        process.stdout.write(`${escapeControlCharacters(formatAllowEntry(e))}\n`);
    });
}
