/**
 * `ca-certificate`: no credential, only trust. The account trusts exactly the CA bundle in
 * `settings.caPem`; Node's `ca` option replaces the system roots rather than adding to them,
 * and host names are still verified against the server's certificate.
 */
import { OutpostError } from '../errors.js';
import { parseCaBundle } from './common-settings.js';
import type { AuthHandler } from './types.js';

/** The `ca-certificate` auth type. */
export const caCertificateAuth: AuthHandler = {
  secretFields: [],
  check(settings, secrets) {
    if (settings.caPem === undefined || settings.caPem === null) {
      throw new OutpostError(
        'INVALID_SETTING',
        'settings.caPem is required for authType "ca-certificate"',
        { field: 'settings.caPem' },
      );
    }
    // Common settings already parsed it when saved through the registry; this keeps the
    // handler safe to call on its own.
    parseCaBundle(settings.caPem);
    return { settings, secrets, warnings: [] };
  },
  async apply() {
    // Trust is all this type adds, and it travels in `tls`.
  },
  tls(account) {
    return { ca: parseCaBundle(account.settings.caPem) };
  },
};
