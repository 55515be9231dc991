/**
 * The accounts this terminal holds. Sealed secrets from the control plane are opened here with
 * the terminal's private key, merged with secrets set on site, checked, and stored encrypted
 * under the local key. The same accounts define where this terminal may send requests.
 */
import type { AccountDescriptor, FieldMap, ResolvedAccount } from '../shared/accounts.js';
import { authHandler, checkAccountFields } from '../shared/auth/registry.js';
import { sealOrigins } from '../shared/crypto/seal-binding.js';
import { openSealedSecrets } from '../shared/crypto/sealing.js';
import { toOutpostError } from '../shared/errors.js';
import { AllowListPolicy, type AllowedDestination } from '../shared/executor/destination-policy.js';
import { parseAccountBase } from '../shared/executor/target-url.js';
import type { Logger } from '../shared/logger.js';
import type { AgentIdentity, AgentStore } from './agent-store.js';

/** What the terminal reports about an account. */
export interface AccountReport {
  id: string;
  revision: number;
  warnings: string[];
  secretFields: string[];
}

/** The held accounts and the destination policy they imply. */
export class AccountRegistry {
  readonly policy: AllowListPolicy;

  constructor(
    private readonly store: AgentStore,
    private readonly identity: AgentIdentity,
    private readonly logger: Logger,
  ) {
    this.policy = new AllowListPolicy(() => this.destinations());
  }

  /** Opens, checks and stores an account from the control plane; returns what to report. */
  async upsert(descriptor: AccountDescriptor): Promise<AccountReport> {
    const known = this.store.accountRevision(descriptor.id);
    if (known !== undefined && known > descriptor.revision) {
      // A stale update never overwrites a newer one.
      return this.report(descriptor.id);
    }
    let secrets: FieldMap = {};
    const warnings: string[] = [];
    const held = this.store.account(descriptor.id);
    const origin = safeOrigins(descriptor);
    if (held && safeOrigins(held.descriptor) !== origin) {
      // Secrets set on site and tokens obtained were given for the old destination only.
      this.store.removeAccount(descriptor.id);
    }
    try {
      for (const layer of descriptor.sealedSecrets) {
        const opened = await openSealedSecrets(this.identity.encryptionPrivateJwk, layer, {
          accountId: descriptor.id,
          origin,
        });
        for (const [k, v] of Object.entries(opened)) {
          if (v === null) delete secrets[k];
          else secrets[k] = v;
        }
      }
    } catch (err) {
      secrets = {};
      warnings.push(`sealedSecrets: ${toOutpostError(err).message}`);
    }
    this.store.saveAccount(descriptor, secrets, warnings);
    this.refreshWarnings(descriptor.id, warnings);
    this.logger.info('account stored', {
      accountId: descriptor.id,
      authType: descriptor.authType,
      revision: descriptor.revision,
    });
    return this.report(descriptor.id);
  }

  /** Replaces the whole set of accounts (after a reconnect). */
  async sync(descriptors: AccountDescriptor[]): Promise<AccountReport[]> {
    const keep = new Set(descriptors.map((d) => d.id));
    for (const held of this.store.accounts()) {
      if (!keep.has(held.descriptor.id)) this.remove(held.descriptor.id);
    }
    const reports: AccountReport[] = [];
    for (const d of descriptors) reports.push(await this.upsert(d));
    return reports;
  }

  /** Forgets an account. */
  remove(id: string): void {
    this.store.removeAccount(id);
    this.logger.info('account removed', { accountId: id });
  }

  /** Re-checks an account's secrets (after a change on site) and stores the warnings. */
  refreshWarnings(id: string, extra: string[] = []): string[] {
    const held = this.store.account(id);
    if (!held) return [];
    const d = held.descriptor;
    const secrets = this.store.accountSecrets(id);
    const warnings = [...extra];
    // A value set on site wins over the control plane's, by design (it never crossed the
    // network); say so, or an operator rotating a secret through the API would see no effect.
    const fromCloud = new Set(this.store.controlPlaneSecretFields(id));
    for (const field of this.store.localSecretFields(id)) {
      if (fromCloud.has(field)) {
        warnings.push(
          `secrets.${field}: the value set on this terminal overrides the one from the control plane ` +
            `(remove it with: terminal-agent accounts unset-secret ${id} ${field})`,
        );
      }
    }
    try {
      warnings.push(...checkAccountFields(d.authType, d.settings, secrets, true).warnings);
    } catch (err) {
      const e = toOutpostError(err);
      warnings.push(`${e.details.field ?? 'account'}: ${e.message}`);
    }
    this.store.setAccountWarnings(id, warnings);
    return warnings;
  }

  /** What to tell the control plane about an account. */
  report(id: string): AccountReport {
    const held = this.store.account(id);
    const secrets = held ? this.store.accountSecrets(id) : {};
    return {
      id,
      revision: held?.descriptor.revision ?? 0,
      warnings: held?.warnings ?? [],
      secretFields: Object.keys(secrets).sort(),
    };
  }

  /** The account with its secrets, for the executor. */
  resolve(id: string): ResolvedAccount | undefined {
    const held = this.store.account(id);
    if (!held) return undefined;
    const d = held.descriptor;
    return {
      id: d.id,
      name: d.name,
      authType: d.authType,
      host: d.host,
      port: d.port,
      settings: d.settings,
      secrets: this.store.accountSecrets(id),
    };
  }

  /** Hosts and ports of held accounts (and their token URLs), plus the local allowlist. */
  destinations(): AllowedDestination[] {
    const out: AllowedDestination[] = [];
    for (const held of this.store.accounts()) {
      const d = held.descriptor;
      try {
        const base = parseAccountBase(d.host, d.port);
        out.push({ host: base.hostname, port: base.port });
        const account = { ...d, secrets: {} } as ResolvedAccount;
        for (const url of authHandler(d.authType).extraOrigins?.(account) ?? []) {
          out.push({
            host: url.hostname,
            port: url.port ? Number(url.port) : url.protocol === 'http:' ? 80 : 443,
          });
        }
      } catch {
        // An account with an unusable host opens no destination.
      }
    }
    return [...out, ...this.store.allowlist()];
  }
}

/** The origins an account's secrets are bound to; an unusable host binds to nothing usable. */
function safeOrigins(d: AccountDescriptor): string {
  try {
    return sealOrigins(d);
  } catch {
    return '(invalid)';
  }
}
