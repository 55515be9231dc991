/** `none`: the request goes out as the job gives it. */
import type { AuthHandler } from './types.js';

/** The `none` auth type. */
export const noneAuth: AuthHandler = {
  secretFields: [],
  check: (settings, secrets) => ({ settings, secrets, warnings: [] }),
  apply: async () => {},
};
