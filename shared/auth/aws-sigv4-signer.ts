/**
 * AWS Signature Version 4 over the exact bytes the executor sends. `aws4` derives the key, builds
 * the string to sign and the Authorization header, and picks and sorts the signed headers; the
 * canonical URI, query and header values are built here, where `aws4` does not fit a request whose
 * path and query are already percent-encoded on the wire (see `WireRequestSigner`).
 */
import { createHash } from 'node:crypto';

import aws4 from 'aws4';

import { encodeRfc3986 } from '../executor/target-url.js';

/** The payload hash S3 accepts for a body it cannot be told in advance. */
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

/**
 * Headers left unsigned, as AWS's own SDK signer leaves them: hop-by-hop headers and headers that
 * proxies and clients rewrite, which would break the signature on the way.
 */
const UNSIGNED_HEADERS = new Set([
  'authorization',
  'cache-control',
  'connection',
  // x-amz-date carries the signing time; AWS's SDK never signs a `date` header beside it.
  'date',
  'expect',
  'from',
  'keep-alive',
  'max-forwards',
  'pragma',
  'referer',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'user-agent',
  'x-amzn-trace-id',
]);

/** A request as it goes on the wire. */
export interface SigV4Request {
  method: string;
  /** Path and query exactly as sent, e.g. `/a%20b?x=1`. */
  path: string;
  /** Lower-case names, `host` included; a repeated header joined with ",". */
  headers: Record<string, string>;
  /** The body; undefined when empty. */
  body: Buffer | undefined;
  /** True when the body cannot be hashed (it streams): signed as UNSIGNED-PAYLOAD. */
  unsignedPayload?: boolean;
}

/** Who signs, for which service, and when. */
export interface SigV4Options {
  service: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
  now: Date;
  /** Also send the payload hash as `x-amz-content-sha256` (always done for S3, which needs it). */
  contentSha256Header: boolean;
  /**
   * S3 rules for the path: encoded once and never normalized (keys may hold `//` and `.`). Other
   * services normalize the path and encode it a second time. Defaults to `service === 's3'`.
   */
  s3Path?: boolean;
}

/** The headers to add to the request, with what the signature was computed from. */
export interface SigV4Result {
  /** `x-amz-date`, `x-amz-security-token`, `x-amz-content-sha256` and `authorization`. */
  headers: Record<string, string>;
  canonicalRequest: string;
  stringToSign: string;
  signature: string;
}

/**
 * Signs a request with the Authorization header. The session token is sent as
 * `x-amz-security-token` and signed like any header.
 */
export function signSigV4(req: SigV4Request, options: SigV4Options): SigV4Result {
  const amzDate = options.now.toISOString().replace(/[:-]|\.\d{3}/g, '');
  const payloadHash = req.unsignedPayload
    ? UNSIGNED_PAYLOAD
    : sha256Hex(req.body ?? Buffer.alloc(0));
  const added: Record<string, string> = { 'x-amz-date': amzDate };
  if (options.sessionToken !== undefined) added['x-amz-security-token'] = options.sessionToken;
  // aws4 would add its own (empty-body) hash for S3 if we did not send one, and AWS reads the
  // payload hash from this header when present, so one given by the job is replaced.
  const sendHash =
    options.contentSha256Header ||
    options.service === 's3' ||
    Object.hasOwn(req.headers, 'x-amz-content-sha256');
  if (sendHash) {
    added['x-amz-content-sha256'] = payloadHash;
  }

  const all = { ...req.headers, ...added };
  const signed: Record<string, string> = {};
  for (const [name, value] of Object.entries(all)) {
    if (!UNSIGNED_HEADERS.has(name) && !/^(proxy|sec)-/.test(name)) signed[name] = value;
  }

  const queryIndex = req.path.indexOf('?');
  const rawPath = queryIndex === -1 ? req.path : req.path.slice(0, queryIndex);
  const rawQuery = queryIndex === -1 ? '' : req.path.slice(queryIndex + 1);
  const s3Path = options.s3Path ?? options.service === 's3';
  const signer = new WireRequestSigner(
    {
      method: req.method,
      path: req.path,
      headers: signed,
      service: options.service,
      region: options.region,
      // `range` and `presigned-expires` are signed by AWS's SDK; aws4 leaves them out by default.
      extraHeadersToInclude: { range: true, 'presigned-expires': true },
    } as aws4.Request,
    { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
    {
      path: s3Path ? s3CanonicalPath(rawPath) : normalizedCanonicalPath(rawPath),
      query: canonicalQuery(rawQuery),
      payloadHash,
    },
  );
  // aws4 reads the time from x-amz-date only inside prepareRequest; set it before anything asks.
  signer.datetime = amzDate;
  const authorization = signer.authHeader();
  return {
    headers: { ...added, authorization },
    canonicalRequest: signer.canonicalString(),
    stringToSign: signer.stringToSign(),
    signature: signer.signature(),
  };
}

interface CanonicalParts {
  path: string;
  query: string;
  payloadHash: string;
}

/**
 * `aws4.RequestSigner` with the canonical URI, query and header values of the wire request. The
 * overrides work around these behaviours of aws4 1.13.2:
 * - `parsePath` runs `encodeURI(decodeURI(path))` on a path holding `[`, `|`, `^` or non-ASCII,
 *   which re-encodes a path that is already encoded and throws on a malformed `%` escape;
 * - it parses the query with `querystring`, which reads `+` as a space, where the wire (RFC 3986,
 *   and AWS's SDK signer) keeps it a literal `+`;
 * - for S3 it signs only the first value of a repeated query key, and it turns `%2F` in the path
 *   into `/` and `+` into a space, so a key sent with an encoded `/` or a literal `+` fails;
 * - it drops a query parameter with an empty name;
 * - it collapses every `\s` in header values (no-break space included), where SigV4 collapses
 *   only spaces and tabs.
 */
class WireRequestSigner extends aws4.RequestSigner {
  constructor(
    request: aws4.Request,
    credentials: aws4.Credentials,
    private readonly parts: CanonicalParts,
  ) {
    super(request, credentials);
  }

  override parsePath(): void {
    this.parsedPath = {
      path: this.request.path ?? '/',
      query: null as unknown as Record<string, string>,
    };
  }

  override canonicalHeaders(): string {
    const lines = this.signedHeaders()
      .split(';')
      .map((name) => {
        const value = String(this.request.headers?.[name] ?? '')
          .replace(/[\r\n]/g, ' ')
          .replace(/[ \t]+/g, ' ')
          .replace(/^ | $/g, '');
        return `${name}:${value}`;
      });
    return lines.join('\n');
  }

  override canonicalString(): string {
    if (!this.parsedPath) this.prepareRequest();
    return [
      (this.request.method ?? 'GET').toUpperCase(),
      this.parts.path,
      this.parts.query,
      `${this.canonicalHeaders()}\n`,
      this.signedHeaders(),
      this.parts.payloadHash,
    ].join('\n');
  }
}

/**
 * The canonical URI of services other than S3: dot segments resolved, empty segments dropped, then
 * the path as sent (already encoded once) encoded a second time.
 */
export function normalizedCanonicalPath(rawPath: string): string {
  const segments: string[] = [];
  for (const segment of rawPath.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  const trailing = segments.length > 0 && rawPath.endsWith('/') ? '/' : '';
  return `/${segments.map(encodeRfc3986).join('/')}${trailing}`;
}

/** The canonical URI of S3: each segment decoded once and encoded once, nothing normalized. */
export function s3CanonicalPath(rawPath: string): string {
  const path = rawPath === '' ? '/' : rawPath;
  return path
    .split('/')
    .map((segment) => encodeRfc3986(decodeLenient(segment)))
    .join('/');
}

/** The canonical query: each name and value decoded once, encoded once, sorted after encoding. */
export function canonicalQuery(rawQuery: string): string {
  const pairs: Array<[string, string]> = [];
  for (const piece of rawQuery.split('&')) {
    if (piece === '') continue;
    const eq = piece.indexOf('=');
    const name = eq === -1 ? piece : piece.slice(0, eq);
    const value = eq === -1 ? '' : piece.slice(eq + 1);
    pairs.push([encodeRfc3986(decodeLenient(name)), encodeRfc3986(decodeLenient(value))]);
  }
  pairs.sort(([n1, v1], [n2, v2]) => compare(n1, n2) || compare(v1, v2));
  return pairs.map(([name, value]) => `${name}=${value}`).join('&');
}

/** Percent-decodes valid UTF-8 escapes and leaves anything malformed as it is. */
function decodeLenient(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
      try {
        return decodeURIComponent(run);
      } catch {
        return run;
      }
    });
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
