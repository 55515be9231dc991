/** `bearer`: a static token in the Authorization header. */
import { assertNoLineBreaks, requireString } from './common-settings.js';
import { requiredSecret } from './required-secret.js';
import type { AuthHandler } from './types.js';

/** The `bearer` auth type. */
export const bearerAuth: AuthHandler = {
  secretFields: ['token'],
  check(settings, secrets, secretsKnown) {
    if (secretsKnown)
      assertNoLineBreaks(requireString(secrets, 'token', 'secrets'), 'secrets.token', 'secrets');
    return { settings, secrets, warnings: [] };
  },
  async apply(req, ctx) {
    req.headers.authorization = `Bearer ${requiredSecret(ctx.account, 'token')}`;
  },
};
