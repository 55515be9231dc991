/** `header`: custom header names and values, all secret. */
import { OutpostError } from '../errors.js';
import { assertHeader, isForbiddenRequestHeader } from '../executor/headers.js';
import type { AuthHandler } from './types.js';

/** The `header` auth type. */
export const headerAuth: AuthHandler = {
  secretFields: ['headers'],
  check(settings, secrets, secretsKnown) {
    if (!secretsKnown) return { settings, secrets, warnings: [] };
    const headers = secrets.headers;
    if (
      !headers ||
      typeof headers !== 'object' ||
      Array.isArray(headers) ||
      Object.keys(headers).length === 0
    ) {
      throw new OutpostError(
        'INVALID_SECRET',
        'secrets.headers must be an object of header names and values',
        {
          field: 'secrets.headers',
        },
      );
    }
    for (const [name, value] of Object.entries(headers)) {
      if (typeof value !== 'string') {
        throw new OutpostError('INVALID_SECRET', `secrets.headers.${name} must be a string`, {
          field: `secrets.headers.${name}`,
        });
      }
      if (isForbiddenRequestHeader(name)) {
        throw new OutpostError(
          'INVALID_SECRET',
          `secrets.headers.${name}: header "${name}" may not be set by an account:` +
            ' Outpost frames the request itself',
          { field: `secrets.headers.${name}` },
        );
      }
      try {
        assertHeader(name, value, `secrets.headers.${name}`);
      } catch (err) {
        throw new OutpostError(
          'INVALID_SECRET',
          (err as Error).message,
          { field: `secrets.headers.${name}` },
          err,
        );
      }
    }
    return { settings, secrets, warnings: [] };
  },
  async apply(req, ctx) {
    const headers = ctx.account.secrets.headers;
    if (!headers || typeof headers !== 'object') {
      throw new OutpostError(
        'INVALID_SECRET',
        `secrets.headers of account ${ctx.account.id} is not set`,
        {
          field: 'secrets.headers',
        },
      );
    }
    for (const [name, value] of Object.entries(headers as Record<string, string>)) {
      req.headers[name.toLowerCase()] = value;
    }
  },
};
