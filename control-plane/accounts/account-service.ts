/**
 * Accounts through the API: validation of settings and secrets, sealing of secrets to the
 * account's terminal, encryption at rest of direct accounts' secrets, and what terminals and the
 * direct executor are given. Plaintext secrets exist only in memory, only as long as needed.
 */
import { z } from 'zod';

import {
  AUTH_TYPES,
  type AccountDescriptor,
  type FieldMap,
  type ResolvedAccount,
} from '../../shared/accounts.js';
import { authHandler, checkAccountFields } from '../../shared/auth/registry.js';
import { decryptAtRest, encryptAtRest } from '../../shared/crypto/aes-gcm.js';
import { sealOrigins } from '../../shared/crypto/seal-binding.js';
import { displayNameSchema } from '../../shared/display-text.js';
import { assertSealedShape, sealSecrets } from '../../shared/crypto/sealing.js';
import { OutpostError } from '../../shared/errors.js';
import { parseAccountBase } from '../../shared/executor/target-url.js';
import { registerSecrets } from '../../shared/logger.js';
import type { MasterKeys } from '../secrets/master-key.js';
import {
  type AccountRecord,
  getAccount,
  insertAccount,
  newAccountId,
  replaceAccount,
} from '../store/accounts.js';
import type { Db } from '../store/database.js';
import { getTerminal } from '../store/terminals.js';

const fieldMap = z.record(z.string(), z.unknown());

/** The body of `POST /v1/accounts`. */
export const createAccountSchema = z
  .object({
    name: displayNameSchema(),
    authType: z.enum(AUTH_TYPES),
    host: z.string().min(1).max(2048),
    port: z.number().int().min(1).max(65535).nullable().optional(),
    terminalId: z.string().nullable().optional(),
    settings: fieldMap.optional(),
    secrets: fieldMap.optional(),
    sealedSecrets: z.string().optional(),
  })
  .strict();

/** The body of `PATCH /v1/accounts/:id`. */
export const patchAccountSchema = z
  .object({
    name: displayNameSchema().optional(),
    host: z.string().min(1).max(2048).optional(),
    port: z.number().int().min(1).max(65535).nullable().optional(),
    terminalId: z.string().nullable().optional(),
    settings: fieldMap.nullable().optional(),
    secrets: fieldMap.nullable().optional(),
    sealedSecrets: z.string().optional(),
    authType: z.unknown().optional(),
  })
  .strict();

/** Merges a patch into a map field by field; `null` removes a field. */
export function mergeFields(base: FieldMap, patch: FieldMap | null | undefined): FieldMap {
  if (!patch) return { ...base };
  const out = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}

/** Account operations of one control plane. */
export class AccountService {
  constructor(
    private readonly db: Db,
    private readonly keys: MasterKeys,
  ) {}

  /** Creates an account from a validated API body. */
  async create(
    workspaceId: string,
    input: z.infer<typeof createAccountSchema>,
  ): Promise<AccountRecord> {
    if (input.secrets !== undefined && input.sealedSecrets !== undefined) {
      throw new OutpostError('VALIDATION_FAILED', 'give secrets or sealedSecrets, not both', {
        field: 'sealedSecrets',
      });
    }
    registerSecrets(input.secrets);
    parseAccountBase(input.host, input.port ?? null);
    const id = newAccountId();
    const settings = input.settings ?? {};
    const terminalId = input.terminalId ?? null;
    const target = { id, name: input.name, host: input.host, port: input.port ?? null };
    const stored = await this.storeSecrets(
      workspaceId,
      target,
      input.authType,
      settings,
      terminalId,
      {
        secrets: input.secrets,
        sealed: input.sealedSecrets,
        previous: undefined,
      },
    );
    return insertAccount(this.db, {
      id,
      workspaceId,
      name: input.name,
      authType: input.authType,
      host: input.host,
      port: input.port ?? null,
      terminalId,
      ...stored,
    });
  }

  /** Applies a validated PATCH body. */
  async patch(
    workspaceId: string,
    id: string,
    input: z.infer<typeof patchAccountSchema>,
  ): Promise<AccountRecord> {
    const current = getAccount(this.db, workspaceId, id);
    if (!current) throw new OutpostError('NOT_FOUND', `account ${id} not found`);
    if (input.authType !== undefined && input.authType !== current.authType) {
      throw new OutpostError(
        'VALIDATION_FAILED',
        'authType cannot change: create a new account instead',
        {
          field: 'authType',
        },
      );
    }
    if (input.secrets && input.sealedSecrets !== undefined) {
      throw new OutpostError('VALIDATION_FAILED', 'give secrets or sealedSecrets, not both', {
        field: 'sealedSecrets',
      });
    }
    registerSecrets(input.secrets);
    const terminalId = input.terminalId === undefined ? current.terminalId : input.terminalId;
    const host = input.host ?? current.host;
    const port = input.port === undefined ? current.port : input.port;
    parseAccountBase(host, port);
    const settings = input.settings === null ? {} : mergeFields(current.settings, input.settings);
    const newSecrets =
      (input.secrets !== undefined && input.secrets !== null) || input.sealedSecrets !== undefined;
    const needsSecrets = authHandler(current.authType).secretFields.length > 0;
    if (terminalId !== current.terminalId && !newSecrets && needsSecrets) {
      throw new OutpostError(
        'SECRETS_REQUIRED',
        'moving an account to another terminal needs its secrets again: send secrets or sealedSecrets with terminalId',
        { field: 'secrets' },
      );
    }
    // Sealed secrets are bound to the origins they go to; the terminal refuses them elsewhere.
    const retargeted =
      terminalId !== null &&
      sealOrigins({ ...current, host, port, settings }) !== sealOrigins(current);
    if (retargeted && !newSecrets && needsSecrets) {
      throw new OutpostError(
        'SECRETS_REQUIRED',
        "pointing a terminal's account at another host, port or token URL needs its secrets " +
          'again: send secrets or sealedSecrets with the change',
        { field: 'secrets' },
      );
    }
    const moved = terminalId !== current.terminalId || retargeted;
    const stored = await this.storeSecrets(
      workspaceId,
      { id, name: input.name ?? current.name, host, port },
      current.authType,
      settings,
      terminalId,
      {
        secrets: input.secrets ?? undefined,
        sealed: input.sealedSecrets,
        previous: moved ? undefined : current,
      },
    );
    return replaceAccount(this.db, {
      ...current,
      name: input.name ?? current.name,
      host,
      port,
      terminalId,
      ...stored,
    });
  }

  /**
   * Validates and stores secrets: encrypted under the master key for a direct account, sealed to
   * the terminal for a bound one. With `previous`, new secrets merge over the old.
   */
  private async storeSecrets(
    workspaceId: string,
    target: Pick<AccountRecord, 'id' | 'name' | 'host' | 'port'>,
    authType: AccountRecord['authType'],
    settings: FieldMap,
    terminalId: string | null,
    input: {
      secrets: FieldMap | undefined;
      sealed: string | undefined;
      previous: AccountRecord | undefined;
    },
  ): Promise<
    Pick<
      AccountRecord,
      'settings' | 'secretsEncrypted' | 'sealedSecrets' | 'secretFields' | 'warnings'
    >
  > {
    const { previous } = input;
    const accountId = target.id;
    const via = settings.mtlsAccountId;
    if (typeof via === 'string' && via !== '') {
      // Another account's client certificate: only one of this workspace, run by the same runner.
      const other = getAccount(this.db, workspaceId, via);
      if (!other || other.terminalId !== terminalId) {
        throw new OutpostError(
          'NOT_FOUND',
          `account ${via} (settings.mtlsAccountId) not found on the same terminal`,
          { field: 'settings.mtlsAccountId' },
        );
      }
    }
    if (terminalId === null) {
      if (input.sealed !== undefined) {
        throw new OutpostError(
          'VALIDATION_FAILED',
          'sealedSecrets need a terminalId: only a terminal can open them',
          {
            field: 'sealedSecrets',
          },
        );
      }
      const old = previous?.secretsEncrypted
        ? this.decrypt(previous.id, previous.secretsEncrypted)
        : {};
      const secrets = mergeFields(old, input.secrets);
      const checked = checkAccountFields(authType, settings, secrets, true);
      return {
        settings: checked.settings,
        secretsEncrypted: encryptAtRest(
          this.keys.current,
          JSON.stringify(checked.secrets),
          accountId,
        ),
        sealedSecrets: null,
        secretFields: Object.keys(checked.secrets).sort(),
        warnings: checked.warnings,
      };
    }
    const terminal = getTerminal(this.db, workspaceId, terminalId);
    if (!terminal)
      throw new OutpostError('NOT_FOUND', `terminal ${terminalId} not found`, {
        field: 'terminalId',
      });
    if (terminal.state === 'revoked') {
      throw new OutpostError('CONFLICT', `terminal ${terminalId} is revoked`, {
        field: 'terminalId',
      });
    }
    if (!terminal.encryptionJwk) {
      throw new OutpostError(
        'CONFLICT',
        `terminal ${terminalId} is not enrolled yet: enroll it first so that secrets can be sealed to its key`,
        { field: 'terminalId' },
      );
    }
    const layers = previous?.sealedSecrets ? (JSON.parse(previous.sealedSecrets) as string[]) : [];
    let fields = new Set(previous?.secretFields ?? []);
    let warnings: string[];
    let checkedSettings = settings;
    if (input.sealed !== undefined) {
      // A whole new set of secrets that only the terminal can read; it reports fields and problems.
      const jwe = assertSealedShape(input.sealed);
      const checked = checkAccountFields(authType, settings, {}, false);
      return {
        settings: checked.settings,
        secretsEncrypted: null,
        sealedSecrets: JSON.stringify([jwe]),
        secretFields: [],
        warnings: checked.warnings,
      };
    }
    if (input.secrets !== undefined) {
      const merging = layers.length > 0;
      // When merging over sealed secrets we cannot see the rest, so only the new fields are checked.
      const present = Object.fromEntries(
        Object.entries(input.secrets).filter(([, v]) => v !== null),
      );
      const checked = checkAccountFields(authType, settings, present, !merging);
      if (merging) checkAccountFields(authType, settings, {}, false);
      checkedSettings = checked.settings;
      warnings = checked.warnings;
      const sealed = await sealSecrets(
        terminal.encryptionJwk,
        merging ? input.secrets : checked.secrets,
        { accountId, origin: sealOrigins({ ...target, authType, settings: checkedSettings }) },
      );
      if (!merging) fields = new Set();
      for (const [k, v] of Object.entries(input.secrets)) {
        if (v === null) fields.delete(k);
        else fields.add(k);
      }
      return {
        settings: checkedSettings,
        secretsEncrypted: null,
        sealedSecrets: JSON.stringify(merging ? [...layers, sealed] : [sealed]),
        secretFields: [...fields].sort(),
        warnings,
      };
    }
    const checked = checkAccountFields(authType, settings, {}, false);
    return {
      settings: checked.settings,
      secretsEncrypted: null,
      sealedSecrets: layers.length > 0 ? JSON.stringify(layers) : null,
      secretFields: [...fields].sort(),
      warnings: previous ? mergeWarnings(checked.warnings, previous.warnings) : checked.warnings,
    };
  }

  private decrypt(accountId: string, stored: string): FieldMap {
    const secrets = JSON.parse(decryptAtRest(this.keys.all, stored, accountId)) as FieldMap;
    registerSecrets(secrets);
    return secrets;
  }

  /** The account with its secrets in memory, for direct execution. */
  resolveDirect(account: AccountRecord): ResolvedAccount {
    return {
      id: account.id,
      name: account.name,
      authType: account.authType,
      host: account.host,
      port: account.port,
      settings: account.settings,
      secrets: account.secretsEncrypted ? this.decrypt(account.id, account.secretsEncrypted) : {},
    };
  }

  /** What a terminal is sent about an account: settings and sealed secrets, never plaintext. */
  descriptor(account: AccountRecord): AccountDescriptor {
    return {
      id: account.id,
      name: account.name,
      authType: account.authType,
      host: account.host,
      port: account.port,
      settings: account.settings,
      sealedSecrets: account.sealedSecrets ? (JSON.parse(account.sealedSecrets) as string[]) : [],
      revision: account.revision,
    };
  }
}

function mergeWarnings(fresh: string[], previous: string[]): string[] {
  return [...new Set([...fresh, ...previous.filter((w) => !w.startsWith('settings.'))])];
}
