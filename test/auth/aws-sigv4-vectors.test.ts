import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { signSigV4 } from '../../shared/auth/aws-sigv4-signer.js';
import { vectorsDir } from '../helpers/vectors.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const vectors = vectorsDir();
const suite = join(vectors ?? join(repoRoot, 'missing-vectors'), 'aws-sigv4');

interface Context {
  credentials: { access_key_id: string; secret_access_key: string; token?: string };
  normalize: boolean;
  region: string;
  service: string;
  sign_body: boolean;
  timestamp: string;
  omit_session_token?: boolean;
}

/** Parses request.txt: a request line, headers (continuation lines and repeats), a body. */
function parseRequest(text: string) {
  const [head, ...rest] = text.split('\n\n');
  const lines = head!.split('\n');
  const requestLine = lines.shift()!;
  const method = requestLine.slice(0, requestLine.indexOf(' '));
  const path = requestLine.slice(method.length + 1, requestLine.lastIndexOf(' HTTP/'));
  const headers: Record<string, string> = {};
  let last = '';
  for (const line of lines) {
    if (line === '') continue;
    if (/^\s/.test(line)) {
      headers[last] += `\n${line}`;
      continue;
    }
    const colon = line.indexOf(':');
    last = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1);
    // A repeated header is one comma-joined value (RFC 9110 section 5.3).
    headers[last] = Object.hasOwn(headers, last) ? `${headers[last]},${value}` : value;
  }
  const body = rest.length > 0 ? Buffer.from(rest.join('\n\n'), 'utf8') : undefined;
  return { method, path, headers, body };
}

const cases = (vectors ? readdirSync(suite, { withFileTypes: true }) : [])
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort();

describe.skipIf(vectors === undefined)('the SigV4 signer against the AWS SigV4 test suite', () => {
  it('finds the whole suite', () => {
    expect(cases.length).toBeGreaterThanOrEqual(38);
  });

  it.each(cases)('signs %s exactly as published', (name) => {
    const read = (file: string) => readFileSync(join(suite, name, file), 'utf8');
    const context = JSON.parse(read('context.json')) as Context;
    const request = parseRequest(read('request.txt'));
    const { credentials } = context;
    const result = signSigV4(request, {
      service: context.service,
      region: context.region,
      accessKeyId: credentials.access_key_id,
      secretAccessKey: credentials.secret_access_key,
      // "sts-header-after" adds the token after signing: the signature is the one without it.
      sessionToken: context.omit_session_token ? undefined : credentials.token,
      now: new Date(context.timestamp),
      contentSha256Header: context.sign_body,
      s3Path: !context.normalize,
    });
    expect(result.canonicalRequest).toBe(read('header-canonical-request.txt'));
    expect(result.stringToSign).toBe(read('header-string-to-sign.txt'));
    expect(result.signature).toBe(read('header-signature.txt').trim());
    const signedRequest = read('header-signed-request.txt');
    const authLine = signedRequest.split('\n').find((l) => l.startsWith('Authorization:'))!;
    expect(`Authorization:${result.headers.authorization}`).toBe(authLine);
  });
});
