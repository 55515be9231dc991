/**
 * The contract every auth type implements. The executor builds the request, asks the auth type
 * to sign or decorate it, sends it, and on a 401 asks it once whether a fresh credential is worth
 * a retry. Auth types keep what they obtain (tokens, cookies) in an `AuthStateStore`, which each
 * side persists encrypted.
 */
import type { Dispatcher } from 'undici';

import type { FieldMap, ResolvedAccount } from '../accounts.js';
import type { Logger } from '../logger.js';

/** The request as the auth type sees it, before it is sent. Mutable. */
export interface OutgoingRequest {
  method: string;
  url: URL;
  /** Lower-case header names. */
  headers: Record<string, string>;
  /** The body when it is held in memory; undefined when there is none or it streams. */
  body: Buffer | undefined;
  /** True when the body streams (unknown bytes): signers must not hash it. */
  bodyStreams: boolean;
}

/** Persistent state of an account's auth flow (tokens, cookies): secrets, stored encrypted. */
export interface AuthStateStore {
  get(accountId: string): FieldMap | undefined;
  /** Stores the new state durably before it is used (a rotated refresh token must not be lost). */
  set(accountId: string, state: FieldMap): void;
}

/** A small answer of an auth endpoint (token URL, login), read whole. */
export interface AuthHttpResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

/** What an auth type may use while it works. */
export interface AuthContext {
  account: ResolvedAccount;
  state: AuthStateStore;
  logger: Logger;
  signal: AbortSignal;
  /** Now in milliseconds; frozen in tests. */
  now(): number;
  /**
   * Sends a request for the auth flow itself (token exchange, login) under the same destination
   * rules and trust settings as jobs. `viaAccountId` borrows another account's TLS client
   * certificate (oauth2 `mtlsAccountId`).
   */
  authRequest(options: {
    method: string;
    url: URL;
    headers: Record<string, string>;
    body?: Buffer;
    viaAccountId?: string;
  }): Promise<AuthHttpResponse>;
}

/** TLS material for connections to the account's host. */
export interface TlsMaterial {
  ca?: string[];
  cert?: string;
  key?: string;
  passphrase?: string;
  pfx?: Buffer;
}

/** The result of checking an account's settings and secrets when it is saved. */
export interface AccountCheck {
  settings: FieldMap;
  secrets: FieldMap;
  /** Problems worth showing but not refusing (a certificate that expires soon). */
  warnings: string[];
}

/** One auth type. */
export interface AuthHandler {
  /** The secret field names this type knows (others are refused). */
  readonly secretFields: readonly string[];
  /**
   * Checks and normalizes settings and secrets; throws INVALID_SETTING or INVALID_SECRET with
   * the field named. `secretsKnown` is false when secrets are sealed and cannot be read here.
   */
  check(settings: FieldMap, secrets: FieldMap, secretsKnown: boolean): AccountCheck;
  /** Adds credentials to the request. */
  apply(req: OutgoingRequest, ctx: AuthContext): Promise<void>;
  /** After a 401: refresh what can be refreshed; true when the request should be sent again. */
  onUnauthorized?(req: OutgoingRequest, ctx: AuthContext): Promise<boolean>;
  /** Client certificate and trust for the account's own connections. */
  tls?(account: ResolvedAccount): TlsMaterial;
  /** Hosts besides the account's own that the flow needs (token URLs). */
  extraOrigins?(account: ResolvedAccount): URL[];
}

/** Options given to undici for a dispatch; kept here so that auth types need not import undici. */
export type DispatchOptions = Dispatcher.RequestOptions;
