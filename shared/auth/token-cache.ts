/**
 * The access token of an account, kept in `ctx.state` so that it survives a restart, renewed
 * before it expires or after the target answers 401, once per account however many requests
 * wait on it. oauth2 and oauth2-jwt differ only in how they fetch a token (`TokenSource`).
 */
import { createHash } from 'node:crypto';

import type { ResolvedAccount } from '../accounts.js';
import { OutpostError } from '../errors.js';
import { registerSecret } from '../logger.js';
import { SingleFlight } from './single-flight.js';
import type { TokenAnswer } from './token-response.js';
import type { AuthContext, OutgoingRequest } from './types.js';

/**
 * Lifetime assumed when a token answer has no `expires_in`. RFC 6749 leaves the default to the
 * server; an hour is the most common one, and a shorter real lifetime still ends in a 401 that
 * renews the token, so guessing long costs one failed request while guessing short costs a
 * token request every few minutes.
 */
export const DEFAULT_LIFETIME_SECONDS = 3600;

/** How long before expiry a token is renewed (at most half its lifetime, for short-lived ones). */
export const REFRESH_MARGIN_MS = 60_000;

const STATE_VERSION = 1;

/** A token as held for an account. */
export interface CachedToken {
  /** Absent when only a refresh token is known (given in the secrets). */
  accessToken?: string;
  refreshToken?: string;
  /** Milliseconds; null when unknown (a token given in the secrets: used until a 401). */
  expiresAt: number | null;
  /** When to renew: expiry less the margin; null when unknown. */
  refreshAt: number | null;
}

/** A token that can be sent. */
export type UsableToken = CachedToken & { accessToken: string };

/** How an auth type obtains tokens. */
export interface TokenSource {
  /** Short name for log lines and messages, e.g. "oauth2". */
  readonly name: string;
  /**
   * What a cached token belongs to (token URL, client, given tokens). State written under
   * another fingerprint is ignored, so editing those fields starts afresh while editing
   * anything else keeps a rotated refresh token the server already swapped for the given one.
   */
  fingerprint(account: ResolvedAccount): string;
  /** The token given in the account's secrets, if any. */
  given(account: ResolvedAccount): CachedToken | undefined;
  /** Asks the token endpoint for a new token; `held` is what is held now. */
  fetch(ctx: AuthContext, held: CachedToken | undefined): Promise<TokenAnswer>;
}

/** A SHA-256 over the parts, to compare identities without keeping them twice. */
export function fingerprintOf(parts: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url');
}

function isNumberOrNull(value: unknown): value is number | null {
  return value === null || typeof value === 'number';
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function isCancellation(err: unknown): boolean {
  return err instanceof OutpostError && (err.code === 'CANCELLED' || err.code === 'TIMEOUT_JOB');
}

/** Holds, renews and remembers the tokens of the accounts of one auth type. */
export class TokenCache {
  private readonly flights = new SingleFlight<UsableToken>();
  /** The token each request was sent with, to tell a stale 401 from one on the newest token. */
  private readonly sentWith = new WeakMap<OutgoingRequest, string>();

  constructor(private readonly source: TokenSource) {}

  /** The token to send with `req`, renewed first when it is missing or due. */
  async tokenFor(req: OutgoingRequest, ctx: AuthContext): Promise<string> {
    const held = this.load(ctx);
    const token =
      held?.accessToken !== undefined && !isDue(held, ctx.now())
        ? held.accessToken
        : (await this.renew(ctx, undefined)).accessToken;
    this.sentWith.set(req, token);
    return token;
  }

  /** After a 401 on `req`: renews the token unless another request already did. */
  async renewAfterUnauthorized(req: OutgoingRequest, ctx: AuthContext): Promise<boolean> {
    await this.renew(ctx, this.sentWith.get(req));
    return true;
  }

  private async renew(ctx: AuthContext, rejected: string | undefined): Promise<UsableToken> {
    const key = ctx.account.id;
    for (let attempt = 0; ; attempt++) {
      const joined = this.flights.has(key);
      try {
        return await this.flights.run(key, () => this.fetchAndStore(ctx, rejected));
      } catch (err) {
        // A shared run fails with the cancellation of the job that started it; a job that
        // merely joined it still wants a token, so it tries once on its own.
        if (attempt === 0 && joined && !ctx.signal.aborted && isCancellation(err)) continue;
        throw err;
      }
    }
  }

  private async fetchAndStore(
    ctx: AuthContext,
    rejected: string | undefined,
  ): Promise<UsableToken> {
    const started = ctx.now();
    const held = this.load(ctx);
    // Another run may have renewed the token while this request waited for its answer.
    if (held?.accessToken !== undefined && held.accessToken !== rejected && !isDue(held, started)) {
      return held as UsableToken;
    }
    ctx.logger.debug('requesting a new access token', {
      authType: this.source.name,
      accountId: ctx.account.id,
      grant: held?.refreshToken !== undefined ? 'refresh_token' : 'initial',
    });
    const answer = await this.source.fetch(ctx, held);
    registerSecret(answer.accessToken);
    registerSecret(answer.refreshToken);

    // Expiry counts from before the request was sent: the server's clock started earlier.
    const lifetimeMs = (answer.expiresInSeconds ?? DEFAULT_LIFETIME_SECONDS) * 1000;
    const expiresAt = started + lifetimeMs;
    const token: UsableToken = {
      accessToken: answer.accessToken,
      // A server that does not rotate sends no refresh token: the held one stays valid.
      refreshToken: answer.refreshToken ?? held?.refreshToken,
      expiresAt,
      refreshAt: expiresAt - Math.min(REFRESH_MARGIN_MS, lifetimeMs / 2),
    };
    // Stored before anyone uses it: a rotated refresh token lost here cannot be recovered.
    ctx.state.set(ctx.account.id, {
      version: STATE_VERSION,
      fingerprint: this.source.fingerprint(ctx.account),
      accessToken: token.accessToken,
      refreshToken: token.refreshToken ?? null,
      expiresAt: token.expiresAt,
      refreshAt: token.refreshAt,
    });
    ctx.logger.info('obtained a new access token', {
      authType: this.source.name,
      accountId: ctx.account.id,
      expiresInSeconds: lifetimeMs / 1000,
      expiresInGiven: answer.expiresInSeconds !== undefined,
      refreshTokenRotated: answer.refreshToken !== undefined,
    });
    return token;
  }

  /** The token held for the account: from state when it belongs to these credentials. */
  private load(ctx: AuthContext): CachedToken | undefined {
    const state = ctx.state.get(ctx.account.id);
    if (
      state &&
      state.version === STATE_VERSION &&
      state.fingerprint === this.source.fingerprint(ctx.account) &&
      isNumberOrNull(state.expiresAt) &&
      isNumberOrNull(state.refreshAt)
    ) {
      const accessToken = optionalString(state.accessToken);
      const refreshToken = optionalString(state.refreshToken);
      // Registered again after a restart, before anything could log them.
      registerSecret(accessToken);
      registerSecret(refreshToken);
      return { accessToken, refreshToken, expiresAt: state.expiresAt, refreshAt: state.refreshAt };
    }
    return this.source.given(ctx.account);
  }
}

function isDue(token: CachedToken, now: number): boolean {
  return token.refreshAt !== null && now >= token.refreshAt;
}
