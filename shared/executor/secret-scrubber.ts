/**
 * Keeps an account's secrets out of job results. A target may echo what it was sent (an echo
 * endpoint, an error page quoting the request, a "who am I" answer); the credentials Outpost
 * added must not come back in the clear through the control plane. Each occurrence is masked
 * with as many `*` as it has bytes, so lengths (and Content-Length) stay true; a secret split
 * across two chunks is found by holding back a short tail of each chunk.
 */
import type { FieldMap } from '../accounts.js';
import type { ResponseHeaders } from './headers.js';

/** Values shorter than this are not masked: they would match by chance. */
const MIN_SECRET_BYTES = 6;

/** Every string inside a secrets object, nested ones included. */
function stringsOf(value: unknown, out: Set<string>): void {
  if (typeof value === 'string') out.add(value);
  else if (value && typeof value === 'object')
    for (const v of Object.values(value)) stringsOf(v, out);
}

/** Masks known secret values in an answer's headers and body. */
export class SecretScrubber {
  private readonly patterns: Buffer[];
  private readonly keep: number;
  private tail = Buffer.alloc(0);

  /**
   * `values`: the account's secrets, the auth state (tokens, cookies), and the credential header
   * values the auth type set on the request (a Basic header's base64 form, for instance).
   */
  constructor(values: Array<FieldMap | string | undefined>) {
    const all = new Set<string>();
    for (const v of values) stringsOf(v, all);
    // A header value like "Bearer abc..." is masked whole and also as its credential part.
    for (const v of [...all]) {
      const space = v.indexOf(' ');
      if (space > 0) all.add(v.slice(space + 1));
    }
    this.patterns = [...all]
      .map((s) => Buffer.from(s, 'utf8'))
      .filter((b) => b.length >= MIN_SECRET_BYTES)
      // Longest first, so that a value containing another is masked whole.
      .sort((a, b) => b.length - a.length);
    this.keep = Math.max(0, ...this.patterns.map((p) => p.length - 1));
  }

  /** True when there is nothing to mask. */
  get empty(): boolean {
    return this.patterns.length === 0;
  }

  private mask(buf: Buffer): Buffer {
    for (const p of this.patterns) {
      for (let at = buf.indexOf(p); at !== -1; at = buf.indexOf(p, at + p.length)) {
        buf.fill(0x2a, at, at + p.length);
      }
    }
    return buf;
  }

  /** The headers with secret values masked. */
  headers(headers: ResponseHeaders): ResponseHeaders {
    if (this.empty) return headers;
    const maskText = (v: string) => this.mask(Buffer.from(v, 'utf8')).toString('utf8');
    const out: ResponseHeaders = {};
    for (const [k, v] of Object.entries(headers))
      out[k] = Array.isArray(v) ? v.map(maskText) : maskText(v);
    return out;
  }

  /**
   * The bytes of a body chunk that can be released now, masked. The last `keep` bytes are held
   * back until the next chunk (or `flush`) shows whether they start a secret.
   */
  chunk(data: Buffer): Buffer {
    if (this.empty) return data;
    const joined = this.mask(Buffer.concat([this.tail, data]));
    const cut = Math.max(0, joined.length - this.keep);
    this.tail = Buffer.from(joined.subarray(cut));
    return joined.subarray(0, cut);
  }

  /** The bytes still held back, masked; call once the body ended. */
  flush(): Buffer {
    const rest = this.mask(this.tail);
    this.tail = Buffer.alloc(0);
    return rest;
  }
}
