/** `oauth1`: OAuth 1.0a (RFC 5849) signed requests with consumer and optional token credentials. */
import { randomBytes } from 'node:crypto';

import { OutpostError } from '../errors.js';
import { assertNoLineBreaks, optionalString, requireString } from './common-settings.js';
import {
  isFormContentType,
  OAUTH1_SIGNATURE_METHODS,
  signOAuth1,
  type OAuth1SignatureMethod,
} from './oauth1-signer.js';
import type { AuthHandler } from './types.js';

interface OAuth1Secrets {
  consumerKey: string;
  consumerSecret: string;
  token?: string;
  tokenSecret?: string;
}

/** The `oauth1` auth type. */
export const oauth1Auth: AuthHandler = {
  secretFields: ['consumerKey', 'consumerSecret', 'token', 'tokenSecret'],
  check(settings, secrets, secretsKnown) {
    const signatureMethod = settings.signatureMethod ?? 'HMAC-SHA1';
    if (!OAUTH1_SIGNATURE_METHODS.includes(signatureMethod as OAuth1SignatureMethod)) {
      throw new OutpostError(
        'INVALID_SETTING',
        `settings.signatureMethod must be one of ${OAUTH1_SIGNATURE_METHODS.join(', ')}`,
        { field: 'settings.signatureMethod' },
      );
    }
    const realm = optionalString(settings, 'realm', 'settings');
    // The realm is a quoted-string of the header (RFC 5849 section 3.5.1), never percent-encoded.
    if (realm !== undefined && /["\\\r\n\0]/.test(realm)) {
      throw new OutpostError(
        'INVALID_SETTING',
        'settings.realm may not contain ", \\, CR, LF or NUL',
        {
          field: 'settings.realm',
        },
      );
    }
    if (secretsKnown) {
      for (const field of ['consumerKey', 'consumerSecret']) {
        assertNoLineBreaks(requireString(secrets, field, 'secrets'), `secrets.${field}`, 'secrets');
      }
      const token = optionalString(secrets, 'token', 'secrets');
      const tokenSecret = optionalString(secrets, 'tokenSecret', 'secrets');
      if (token !== undefined) assertNoLineBreaks(token, 'secrets.token', 'secrets');
      if (tokenSecret !== undefined)
        assertNoLineBreaks(tokenSecret, 'secrets.tokenSecret', 'secrets');
      // A token secret without its token signs nothing the server can match to a token.
      if (tokenSecret !== undefined && token === undefined) {
        throw new OutpostError(
          'INVALID_SECRET',
          'secrets.tokenSecret is set but secrets.token is not',
          {
            field: 'secrets.token',
          },
        );
      }
    }
    return { settings: { ...settings, signatureMethod }, secrets, warnings: [] };
  },
  async apply(req, ctx) {
    const secrets = ctx.account.secrets as unknown as OAuth1Secrets;
    const settings = ctx.account.settings;
    const contentType = req.headers['content-type'];
    // The parameters of a form body are part of the signature; a streamed one cannot be read.
    if (req.bodyStreams && isFormContentType(contentType)) {
      throw new OutpostError(
        'AUTH_FLOW_FAILED',
        'oauth1 cannot sign a streamed application/x-www-form-urlencoded body: send it inline',
      );
    }
    const signed = signOAuth1({
      method: req.method,
      url: req.url,
      body: req.body,
      contentType,
      consumerKey: secrets.consumerKey,
      consumerSecret: secrets.consumerSecret,
      token: secrets.token ?? undefined,
      tokenSecret: secrets.tokenSecret ?? undefined,
      signatureMethod:
        (settings.signatureMethod as OAuth1SignatureMethod | undefined) ?? 'HMAC-SHA1',
      realm: settings.realm as string | undefined,
      timestamp: String(Math.floor(ctx.now() / 1000)),
      nonce: randomBytes(16).toString('hex'),
      version: '1.0',
    });
    req.headers.authorization = signed.authorization;
  },
};
