/** `basic`: RFC 7617 with UTF-8 credentials. */
import { OutpostError } from '../errors.js';
import { assertNoLineBreaks, requireString } from './common-settings.js';
import { requiredSecret } from './required-secret.js';
import type { AuthHandler } from './types.js';

/** The `basic` auth type. */
export const basicAuth: AuthHandler = {
  secretFields: ['username', 'password'],
  check(settings, secrets, secretsKnown) {
    if (secretsKnown) {
      // Each field is checked fully before the next is required, so that a value set alone
      // (on site, one field at a time) is judged on its own.
      const username = requireString(secrets, 'username', 'secrets');
      // RFC 7617: the user-id cannot contain a colon, the password may.
      if (username.includes(':')) {
        throw new OutpostError('INVALID_SECRET', 'secrets.username may not contain ":"', {
          field: 'secrets.username',
        });
      }
      assertNoLineBreaks(username, 'secrets.username', 'secrets');
      if (typeof secrets.password !== 'string') {
        throw new OutpostError(
          'INVALID_SECRET',
          'secrets.password is required and must be a string',
          {
            field: 'secrets.password',
          },
        );
      }
      assertNoLineBreaks(secrets.password, 'secrets.password', 'secrets');
    }
    return { settings, secrets, warnings: [] };
  },
  async apply(req, ctx) {
    const username = requiredSecret(ctx.account, 'username');
    const password = requiredSecret(ctx.account, 'password');
    const encoded = Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
    req.headers.authorization = `Basic ${encoded}`;
  },
};
