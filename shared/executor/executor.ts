/**
 * The request executor: one code path for jobs run by a terminal and jobs run directly by the
 * control plane. It builds the target URL, lets the account's auth type sign the request, sends
 * it with undici under the destination policy, and streams the answer into a sink that applies
 * backpressure.
 */
import { isIP } from 'node:net';
import { Readable } from 'node:stream';

import type { Dispatcher } from 'undici';

import type { ResolvedAccount } from '../accounts.js';
import { parseCaBundle } from '../auth/common-settings.js';
import { authHandler } from '../auth/registry.js';
import type {
  AuthContext,
  AuthHttpResponse,
  AuthStateStore,
  OutgoingRequest,
  TlsMaterial,
} from '../auth/types.js';
import { OutpostError } from '../errors.js';
import type { JobRequest } from '../jobs.js';
import type { Logger } from '../logger.js';
import { type DestinationPolicy, bareHost, urlPort } from './destination-policy.js';
import { DispatcherCache, classifyNetworkError } from './dispatchers.js';
import { checkJobHeaders, normalizeResponseHeaders, type ResponseHeaders } from './headers.js';
import { inlineBody, type RequestBody } from './request-body.js';
import { SecretScrubber } from './secret-scrubber.js';
import { buildTargetUrl, parseAccountBase } from './target-url.js';

/** Where the answer goes: the head first, then each chunk; both may wait (backpressure). */
export interface ResponseSink {
  head(status: number, headers: ResponseHeaders): Promise<void>;
  chunk(data: Buffer): Promise<void>;
}

/** Timeouts of one request, besides the whole-job deadline carried by the abort signal. */
export interface RequestTimeouts {
  connectMs: number;
  firstByteMs: number;
  idleBodyMs: number;
}

/** Defaults of `RequestTimeouts`. */
export const DEFAULT_TIMEOUTS: RequestTimeouts = {
  connectMs: 10_000,
  firstByteMs: 30_000,
  idleBodyMs: 30_000,
};

/** Options of an `Executor`, compiled once. */
export interface ExecutorOptions {
  policy: DestinationPolicy;
  state: AuthStateStore;
  logger: Logger;
  /** Looks up another account (oauth2 `mtlsAccountId`). */
  getAccount(id: string): ResolvedAccount | undefined;
  connectTimeoutMs?: number;
  now?: () => number;
}

/** One request to run. */
export interface ExecuteInput {
  account: ResolvedAccount;
  request: JobRequest;
  /** A streamed body (request-body upload); otherwise the job's inline body is used. */
  streamedBody?: AsyncIterable<Buffer>;
  signal: AbortSignal;
  timeouts?: Partial<RequestTimeouts>;
  logger?: Logger;
}

/** What a finished request reports. */
export interface ExecuteResult {
  status: number;
  bodyBytes: number;
}

/** Auth types whose flows keep secrets in the auth state store. */
const STATEFUL_AUTH_TYPES = new Set(['oauth2', 'oauth2-jwt', 'cookie']);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
const MAX_AUTH_RESPONSE_BYTES = 1024 * 1024;
/** Headers that carry credentials and are dropped when a redirect leaves the origin. */
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];

/** Runs requests for accounts. */
export class Executor {
  private readonly dispatchers: DispatcherCache;
  private readonly now: () => number;

  constructor(private readonly options: ExecutorOptions) {
    this.dispatchers = new DispatcherCache(options.policy, {
      connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_TIMEOUTS.connectMs,
    });
    this.now = options.now ?? Date.now;
  }

  /** Closes pooled connections. */
  async close(): Promise<void> {
    await this.dispatchers.close();
  }

  /** The TLS material of an account: its trusted CA bundle and client certificate. */
  tlsFor(account: ResolvedAccount): TlsMaterial {
    const own = authHandler(account.authType).tls?.(account) ?? {};
    const ca =
      account.settings.caPem !== undefined ? parseCaBundle(account.settings.caPem) : own.ca;
    return { ...own, ca };
  }

  /** Sends the request and streams the answer into the sink. Throws an OutpostError on failure. */
  async execute(input: ExecuteInput, sink: ResponseSink): Promise<ExecuteResult> {
    const { account, request, signal } = input;
    const logger = input.logger ?? this.options.logger;
    const timeouts = { ...DEFAULT_TIMEOUTS, ...input.timeouts };
    const handler = authHandler(account.authType);
    const base = parseAccountBase(account.host, account.port);
    const firstUrl = buildTargetUrl(base, request.path, request.query);
    const jobHeaders = checkJobHeaders(request.headers);
    const body: RequestBody = input.streamedBody
      ? { kind: 'stream', stream: input.streamedBody }
      : inlineBody(request, jobHeaders);
    const ctx = this.authContext(account, logger, signal);

    let url = firstUrl;
    let method = request.method;
    let currentBody = body;
    const credentials: string[] = [];
    let retriedAuth = false;
    for (let hop = 0; ; hop++) {
      const sameOrigin = url.origin === firstUrl.origin;
      const out: OutgoingRequest = {
        method,
        url: new URL(url),
        headers: { ...jobHeaders },
        body: currentBody?.kind === 'buffer' ? currentBody.data : undefined,
        bodyStreams: currentBody?.kind === 'stream',
      };
      if (!sameOrigin) for (const h of CREDENTIAL_HEADERS) delete out.headers[h];
      if (currentBody === undefined) delete out.headers['content-type'];
      // Credentials go only to the account's own origin, never to where a redirect points.
      if (sameOrigin) {
        await wrapAuth(() => handler.apply(out, ctx));
        // Whatever the auth type put in the headers is a credential, in the form it was sent.
        for (const [name, value] of Object.entries(out.headers)) {
          if (jobHeaders[name] !== value) credentials.push(value);
        }
      }
      logger.debug('sending request', { method: out.method, origin: out.url.origin, hop });

      const res = await this.send(
        out,
        currentBody,
        signal,
        timeouts,
        sameOrigin ? account : undefined,
      );
      const replayable = currentBody === undefined || currentBody.kind === 'buffer';

      if (
        res.statusCode === 401 &&
        !retriedAuth &&
        sameOrigin &&
        replayable &&
        handler.onUnauthorized
      ) {
        await res.body.dump().catch(() => undefined);
        retriedAuth = true;
        if (await wrapAuth(() => handler.onUnauthorized!(out, ctx))) {
          logger.info('target answered 401; retrying once with fresh credentials');
          hop--;
          continue;
        }
        throw new OutpostError(
          'AUTH_FLOW_FAILED',
          'the target answered 401 and the credentials could not be renewed',
        );
      }

      const location = res.headers.location;
      if (
        REDIRECTS.has(res.statusCode) &&
        account.settings.followRedirects === true &&
        typeof location === 'string'
      ) {
        await res.body.dump().catch(() => undefined);
        if (hop + 1 > MAX_REDIRECTS) {
          throw new OutpostError('REDIRECT_REFUSED', `more than ${MAX_REDIRECTS} redirects`);
        }
        const next = resolveRedirect(url, location);
        const keepsBody = res.statusCode === 307 || res.statusCode === 308;
        if (keepsBody && !replayable) {
          throw new OutpostError('REDIRECT_REFUSED', 'a redirect asked to resend a streamed body');
        }
        if (!keepsBody && (res.statusCode === 303 || method === 'POST')) {
          method = res.statusCode === 303 && method === 'HEAD' ? 'HEAD' : 'GET';
          currentBody = undefined;
        }
        url = next;
        continue;
      }

      const scrubber = new SecretScrubber([
        account.secrets,
        // Only these types keep obtained secrets (tokens, refresh tokens, cookies) in the state.
        STATEFUL_AUTH_TYPES.has(account.authType) ? this.options.state.get(account.id) : undefined,
        ...credentials,
      ]);
      await sink.head(res.statusCode, scrubber.headers(normalizeResponseHeaders(res.headers)));
      let bodyBytes = 0;
      try {
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          bodyBytes += chunk.length;
          const clean = scrubber.chunk(chunk);
          if (clean.length > 0) await sink.chunk(clean);
        }
        const rest = scrubber.flush();
        if (rest.length > 0) await sink.chunk(rest);
      } catch (err) {
        res.body.destroy();
        throw abortReason(signal) ?? classifyNetworkError(err, 'body');
      }
      return { status: res.statusCode, bodyBytes };
    }
  }

  private async send(
    out: OutgoingRequest,
    body: RequestBody,
    signal: AbortSignal,
    timeouts: RequestTimeouts,
    account: ResolvedAccount | undefined,
  ): Promise<Dispatcher.ResponseData> {
    const policy = this.options.policy;
    policy.checkUrl(out.url);
    const port = urlPort(out.url);
    const host = bareHost(out.url.hostname);
    if (isIP(host)) policy.checkAddress(host, host, port);
    // TLS material belongs to the account's own origin; a redirect elsewhere gets default trust.
    const tls = account ? this.tlsFor(account) : {};
    const dispatcher = this.dispatchers.get(tls, port);
    try {
      const options: Dispatcher.RequestOptions = {
        origin: out.url.origin,
        path: `${out.url.pathname}${out.url.search}`,
        method: out.method,
        headers: out.headers,
        body:
          body === undefined
            ? undefined
            : body.kind === 'buffer'
              ? body.data
              : Readable.from(body.stream),
        signal,
        headersTimeout: timeouts.firstByteMs,
        bodyTimeout: timeouts.idleBodyMs,
      };
      return await dispatcher.request(options);
    } catch (err) {
      throw abortReason(signal) ?? classifyNetworkError(err, 'connect', { url: out.url, tls });
    }
  }

  private authContext(account: ResolvedAccount, logger: Logger, signal: AbortSignal): AuthContext {
    return {
      account,
      state: this.options.state,
      logger,
      signal,
      now: this.now,
      authRequest: (req) => this.authRequest(account, req, signal),
    };
  }

  /** A small request of an auth flow (token URL, login), read whole. */
  private async authRequest(
    account: ResolvedAccount,
    req: {
      method: string;
      url: URL;
      headers: Record<string, string>;
      body?: Buffer;
      viaAccountId?: string;
    },
    signal: AbortSignal,
  ): Promise<AuthHttpResponse> {
    let tlsAccount = account;
    if (req.viaAccountId) {
      const via = this.options.getAccount(req.viaAccountId);
      if (!via) {
        throw new OutpostError(
          'AUTH_FLOW_FAILED',
          `account ${req.viaAccountId} (mtlsAccountId) is not known here`,
        );
      }
      tlsAccount = via;
    }
    const out: OutgoingRequest = {
      method: req.method,
      url: req.url,
      headers: req.headers,
      body: req.body,
      bodyStreams: false,
    };
    const res = await this.send(
      out,
      req.body ? { kind: 'buffer', data: req.body } : undefined,
      signal,
      DEFAULT_TIMEOUTS,
      tlsAccount,
    );
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_AUTH_RESPONSE_BYTES) {
        res.body.destroy();
        throw new OutpostError(
          'AUTH_FLOW_FAILED',
          `the answer of ${req.url.origin} was larger than 1 MB`,
        );
      }
      chunks.push(chunk);
    }
    return {
      status: res.statusCode,
      headers: normalizeResponseHeaders(res.headers),
      body: Buffer.concat(chunks),
    };
  }
}

function abortReason(signal: AbortSignal): OutpostError | undefined {
  if (!signal.aborted) return undefined;
  const reason: unknown = signal.reason;
  return reason instanceof OutpostError
    ? reason
    : new OutpostError('CANCELLED', 'the job was cancelled');
}

/** Errors thrown by an auth flow become AUTH_FLOW_FAILED unless they already carry a code. */
async function wrapAuth<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof OutpostError) throw err;
    throw new OutpostError(
      'AUTH_FLOW_FAILED',
      `the auth flow failed: ${(err as Error).message}`,
      {},
      err,
    );
  }
}

/** Resolves a Location header; an HTTPS request is never redirected to plain HTTP. */
function resolveRedirect(from: URL, location: string): URL {
  let next: URL;
  try {
    next = new URL(location, from);
  } catch (err) {
    throw new OutpostError('REDIRECT_REFUSED', 'the target redirected to an invalid URL', {}, err);
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:') {
    throw new OutpostError('REDIRECT_REFUSED', `the target redirected to a ${next.protocol} URL`);
  }
  if (from.protocol === 'https:' && next.protocol === 'http:') {
    throw new OutpostError(
      'REDIRECT_REFUSED',
      'the target redirected from HTTPS to plain HTTP; refused',
    );
  }
  next.hash = '';
  return next;
}
