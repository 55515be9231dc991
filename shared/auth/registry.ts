/** The auth types by name, and the one check an account's fields go through when saved. */
import type { AuthType, FieldMap } from '../accounts.js';
import { OutpostError } from '../errors.js';
import { awsAuth } from './aws-sigv4.js';
import { basicAuth } from './basic.js';
import { bearerAuth } from './bearer.js';
import { caCertificateAuth } from './ca-certificate.js';
import { cookieAuth } from './cookie.js';
import { checkCommonSettings } from './common-settings.js';
import { headerAuth } from './header.js';
import { mtlsAuth } from './mtls.js';
import { noneAuth } from './none.js';
import { oauth1Auth } from './oauth1.js';
import { oauth2Auth } from './oauth2.js';
import { oauth2JwtAuth } from './oauth2-jwt.js';
import type { AccountCheck, AuthHandler } from './types.js';

const handlers: Partial<Record<AuthType, AuthHandler>> = {
  none: noneAuth,
  basic: basicAuth,
  bearer: bearerAuth,
  header: headerAuth,
  'ca-certificate': caCertificateAuth,
  mtls: mtlsAuth,
  oauth2: oauth2Auth,
  'oauth2-jwt': oauth2JwtAuth,
  cookie: cookieAuth,
  oauth1: oauth1Auth,
  aws: awsAuth,
};

/** The handler of an auth type; throws VALIDATION_FAILED for a type this build does not know. */
export function authHandler(authType: AuthType): AuthHandler {
  const handler = handlers[authType];
  if (!handler) {
    throw new OutpostError(
      'VALIDATION_FAILED',
      `authType "${authType}" is not supported by this build`,
      {
        field: 'authType',
      },
    );
  }
  return handler;
}

/** Registers an auth type's handler (each auth module registers itself from `auth/index.ts`). */
export function registerAuthHandler(authType: AuthType, handler: AuthHandler): void {
  handlers[authType] = handler;
}

/**
 * Checks an account's settings and secrets for its auth type: unknown secret fields are refused,
 * common settings are checked, then the type's own rules. `secretsKnown` is false when the
 * secrets are sealed and only the terminal can read them.
 */
export function checkAccountFields(
  authType: AuthType,
  settings: FieldMap,
  secrets: FieldMap,
  secretsKnown: boolean,
): AccountCheck {
  const handler = authHandler(authType);
  if (secretsKnown) {
    for (const key of Object.keys(secrets)) {
      if (!handler.secretFields.includes(key)) {
        const accepted = handler.secretFields.length > 0 ? handler.secretFields.join(', ') : 'none';
        throw new OutpostError(
          'INVALID_SECRET',
          `secrets.${key} is not a secret of authType "${authType}"; accepted: ${accepted}`,
          { field: `secrets.${key}` },
        );
      }
    }
  }
  const warnings = checkCommonSettings(settings);
  const checked = handler.check(settings, secrets, secretsKnown);
  return { ...checked, warnings: [...warnings, ...checked.warnings] };
}
