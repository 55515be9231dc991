/** Settings every auth type takes: caPem, followRedirects, rateLimit, testPath. */
import { X509Certificate } from 'node:crypto';

import type { FieldMap } from '../accounts.js';
import { OutpostError } from '../errors.js';

/** Splits a PEM bundle into its certificates; throws INVALID_SETTING on anything malformed. */
export function parseCaBundle(pem: unknown, field = 'settings.caPem'): string[] {
  if (typeof pem !== 'string' || !pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new OutpostError('INVALID_SETTING', `${field} must be one or more PEM certificates`, {
      field,
    });
  }
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw new OutpostError(
        'INVALID_SETTING',
        `${field} holds a certificate that cannot be parsed`,
        { field },
        err,
      );
    }
  }
  if (blocks.length === 0) {
    throw new OutpostError('INVALID_SETTING', `${field} holds no complete certificate`, { field });
  }
  return blocks;
}

/** Checks the settings common to every auth type and returns warnings. */
export function checkCommonSettings(settings: FieldMap): string[] {
  const warnings: string[] = [];
  if (settings.caPem !== undefined) {
    const certs = parseCaBundle(settings.caPem);
    for (const pem of certs) {
      const cert = new X509Certificate(pem);
      const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
      if (days < 0)
        warnings.push(
          `settings.caPem: a CA certificate expired on ${new Date(cert.validTo).toISOString()}`,
        );
      else if (days < 30)
        warnings.push(
          `settings.caPem: a CA certificate expires on ${new Date(cert.validTo).toISOString()}`,
        );
    }
  }
  if (settings.followRedirects !== undefined && typeof settings.followRedirects !== 'boolean') {
    throw new OutpostError('INVALID_SETTING', 'settings.followRedirects must be true or false', {
      field: 'settings.followRedirects',
    });
  }
  if (
    settings.testPath !== undefined &&
    (typeof settings.testPath !== 'string' || !settings.testPath.startsWith('/'))
  ) {
    throw new OutpostError(
      'INVALID_SETTING',
      'settings.testPath must be a path starting with "/"',
      {
        field: 'settings.testPath',
      },
    );
  }
  if (settings.rateLimit !== undefined) {
    const rl: unknown = settings.rateLimit;
    const { requests, perSeconds } = (rl !== null && typeof rl === 'object' ? rl : {}) as {
      requests?: unknown;
      perSeconds?: unknown;
    };
    const ok =
      typeof requests === 'number' &&
      Number.isInteger(requests) &&
      requests > 0 &&
      typeof perSeconds === 'number' &&
      perSeconds > 0;
    if (!ok) {
      throw new OutpostError(
        'INVALID_SETTING',
        'settings.rateLimit must be {"requests": positive integer, "perSeconds": positive number}',
        { field: 'settings.rateLimit' },
      );
    }
  }
  return warnings;
}

/** Reads a required non-empty string field or throws with the field named. */
export function requireString(map: FieldMap, key: string, kind: 'secrets' | 'settings'): string {
  const value = map[key];
  if (typeof value !== 'string' || value === '') {
    throw new OutpostError(
      kind === 'secrets' ? 'INVALID_SECRET' : 'INVALID_SETTING',
      `${kind}.${key} is required and must be a non-empty string`,
      { field: `${kind}.${key}` },
    );
  }
  return value;
}

/** Reads an optional string field or throws with the field named when it is not a string. */
export function optionalString(
  map: FieldMap,
  key: string,
  kind: 'secrets' | 'settings',
): string | undefined {
  const value = map[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') {
    throw new OutpostError(
      kind === 'secrets' ? 'INVALID_SECRET' : 'INVALID_SETTING',
      `${kind}.${key} must be a string`,
      { field: `${kind}.${key}` },
    );
  }
  return value;
}

/** Refuses CR, LF and NUL in a value that ends up in a header. */
export function assertNoLineBreaks(
  value: string,
  field: string,
  kind: 'secrets' | 'settings',
): void {
  if (/[\r\n\0]/.test(value)) {
    throw new OutpostError(
      kind === 'secrets' ? 'INVALID_SECRET' : 'INVALID_SETTING',
      `${field} may not contain CR, LF or NUL`,
      { field },
    );
  }
}
