/** `aws`: AWS Signature Version 4 with an access key, optionally a session token. */
import { OutpostError } from '../errors.js';
import { signSigV4 } from './aws-sigv4-signer.js';
import { assertNoLineBreaks, optionalString, requireString } from './common-settings.js';
import type { AuthHandler } from './types.js';

interface AwsSecrets {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | null;
}

/** Service and region names go into the credential scope: lower-case letters, digits and "-". */
const SCOPE_NAME = /^[a-z0-9][a-z0-9-]*$/;

/**
 * The `aws` auth type. Each request is signed for exactly what undici sends: the path and query
 * of the URL as they are, the request's headers plus `host`, and the body. A streamed body cannot
 * be hashed: S3 takes it as UNSIGNED-PAYLOAD; other services mostly refuse an unsigned payload,
 * so such a request fails here, before anything is sent, rather than with a 403 from AWS.
 */
export const awsAuth: AuthHandler = {
  secretFields: ['accessKeyId', 'secretAccessKey', 'sessionToken'],
  check(settings, secrets, secretsKnown) {
    for (const field of ['service', 'region']) {
      const value = requireString(settings, field, 'settings');
      if (!SCOPE_NAME.test(value)) {
        throw new OutpostError(
          'INVALID_SETTING',
          `settings.${field} must be lower-case letters, digits and "-" (e.g. "s3", "us-east-1")`,
          { field: `settings.${field}` },
        );
      }
    }
    if (secretsKnown) {
      const accessKeyId = requireString(secrets, 'accessKeyId', 'secrets');
      // The key id is written into the Authorization header's Credential=ID/scope list.
      if (/[\s,/]/.test(accessKeyId)) {
        throw new OutpostError(
          'INVALID_SECRET',
          'secrets.accessKeyId may not contain spaces, "," or "/"',
          {
            field: 'secrets.accessKeyId',
          },
        );
      }
      assertNoLineBreaks(
        requireString(secrets, 'secretAccessKey', 'secrets'),
        'secrets.secretAccessKey',
        'secrets',
      );
      const sessionToken = optionalString(secrets, 'sessionToken', 'secrets');
      if (sessionToken !== undefined)
        assertNoLineBreaks(sessionToken, 'secrets.sessionToken', 'secrets');
    }
    return { settings, secrets, warnings: [] };
  },
  async apply(req, ctx) {
    const { service, region } = ctx.account.settings as { service: string; region: string };
    const secrets = ctx.account.secrets as unknown as AwsSecrets;
    if (req.bodyStreams && service !== 's3') {
      throw new OutpostError(
        'AUTH_FLOW_FAILED',
        `aws: a streamed body cannot be signed for service "${service}" (only s3 accepts ` +
          'UNSIGNED-PAYLOAD): send the body inline',
      );
    }
    // undici writes this same value when no host header is given; setting it makes sure the
    // signed host is the sent one (with the port only when it is not the scheme's default).
    req.headers.host = req.url.host;
    const signed = signSigV4(
      {
        method: req.method,
        path: `${req.url.pathname}${req.url.search}`,
        headers: req.headers,
        body: req.body,
        unsignedPayload: req.bodyStreams,
      },
      {
        service,
        region,
        accessKeyId: secrets.accessKeyId,
        secretAccessKey: secrets.secretAccessKey,
        sessionToken: secrets.sessionToken ?? undefined,
        now: new Date(ctx.now()),
        contentSha256Header: service === 's3',
      },
    );
    Object.assign(req.headers, signed.headers);
  },
};
