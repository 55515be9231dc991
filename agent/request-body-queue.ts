/**
 * The request body of an upload job as it arrives from the control plane in binary frames. The
 * executor reads it as a stream; each chunk read is confirmed back, which is the credit that lets
 * the control plane send more, so memory stays bounded by the credit window.
 */
import { OutpostError } from '../shared/errors.js';

/** Chunks received and not yet read, ended by `body.end`. */
export class RequestBodyQueue {
  private readonly chunks: Buffer[] = [];
  private ended = false;
  private failure: OutpostError | undefined;
  private wake: (() => void) | undefined;
  /** Bytes received so far (the offset the next frame must carry). */
  received = 0;
  /** Bytes handed to the request so far. */
  consumed = 0;

  constructor(private readonly onConsumed: (consumed: number) => void) {}

  /** Adds a chunk that starts at `offset`; a frame out of order fails the body. */
  push(offset: number, data: Buffer): void {
    if (this.ended || this.failure) return;
    if (offset !== this.received) {
      this.fail(
        new OutpostError(
          'REQUEST_FAILED',
          `request body frame at ${offset}, expected ${this.received}`,
        ),
      );
      return;
    }
    this.chunks.push(data);
    this.received += data.length;
    this.wake?.();
  }

  /** No more bytes will come. */
  end(): void {
    this.ended = true;
    this.wake?.();
  }

  /** True until the body ended or failed. */
  get open(): boolean {
    return !this.ended && !this.failure;
  }

  /** Makes the reader fail (the connection dropped mid-body): the request must not go out cut. */
  fail(err: OutpostError): void {
    this.failure ??= err;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    for (;;) {
      if (this.failure) throw this.failure;
      const next = this.chunks.shift();
      if (next) {
        yield next;
        this.consumed += next.length;
        this.onConsumed(this.consumed);
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
    }
  }
}
