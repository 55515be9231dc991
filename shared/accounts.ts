/** The account model shared by the control plane and the agent. */

/** Every auth type of the public contract. */
export const AUTH_TYPES = [
  'none',
  'basic',
  'bearer',
  'oauth1',
  'oauth2',
  'cookie',
  'aws',
  'oauth2-jwt',
  'header',
  'ca-certificate',
  'mtls',
] as const;

/** One auth type. */
export type AuthType = (typeof AUTH_TYPES)[number];

/** Plain settings or secrets of an account: JSON values by field name. */
export type FieldMap = Record<string, unknown>;

/** What the executor needs of an account, secrets included (never leaves the process). */
export interface ResolvedAccount {
  id: string;
  name: string;
  authType: AuthType;
  host: string;
  port: number | null;
  settings: FieldMap;
  secrets: FieldMap;
}

/** The account as sent to a terminal, with its secrets still sealed. */
export interface AccountDescriptor {
  id: string;
  name: string;
  authType: AuthType;
  host: string;
  port: number | null;
  settings: FieldMap;
  /** Compact JWEs sealed to the terminal's key: the secrets, then patches merged in order. */
  sealedSecrets: string[];
  /** Bumped on every change so that a stale update never overwrites a newer one. */
  revision: number;
}
