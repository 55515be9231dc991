/**
 * Streamed request bodies (`requestBodyUpload: true` jobs): the API caller's PUT stream is
 * handed on as it arrives, to the terminal as binary frames under the credit the agent grants as
 * its request consumes them, or to the direct executor. Memory stays bounded by the credit
 * window, whatever the body's size. A body that cannot be handed on whole fails its job.
 */
import { OutpostError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { encodeBodyFrame, FRAME_KIND } from '../../shared/protocol/binary-frames.js';
import { CHANNEL_LIMITS, type ControlMessage } from '../../shared/protocol/messages.js';

/** How uploads reach a terminal. */
export interface UploadLink {
  send(terminalId: string, message: ControlMessage): boolean;
  sendBinary(terminalId: string, frame: Buffer): Promise<boolean>;
}

interface Upload {
  source: AsyncIterable<Buffer>;
  sent: number;
  confirmed: number;
  wake: (() => void) | undefined;
  aborted: OutpostError | undefined;
  resolve: (bytes: number) => void;
  reject: (err: OutpostError) => void;
}

/** The uploads in progress, by job id. */
export class RequestUploads {
  private readonly active = new Map<string, Upload>();

  constructor(
    private readonly link: UploadLink,
    private readonly logger: Logger,
  ) {}

  /** Registers the caller's body; the promise settles once it was handed on whole, or failed. */
  register(jobId: string, source: AsyncIterable<Buffer>): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.active.set(jobId, {
        source,
        sent: 0,
        confirmed: 0,
        wake: undefined,
        aborted: undefined,
        resolve,
        reject,
      });
    });
  }

  /** True while a job's body is registered and not yet handed on. */
  has(jobId: string): boolean {
    return this.active.has(jobId);
  }

  /** The terminal received `job.start`: send the body as frames, then `body.end`. */
  async sendToTerminal(terminalId: string, jobId: string): Promise<void> {
    const upload = this.active.get(jobId);
    if (!upload) return;
    try {
      for await (const piece of upload.source) {
        for (let at = 0; at < piece.length; at += CHANNEL_LIMITS.chunkBytes) {
          const data = piece.subarray(at, at + CHANNEL_LIMITS.chunkBytes);
          while (
            upload.sent - upload.confirmed >= CHANNEL_LIMITS.creditWindowBytes &&
            !upload.aborted
          ) {
            await new Promise<void>((r) => (upload.wake = r));
          }
          if (upload.aborted) throw upload.aborted;
          const frame = encodeBodyFrame(FRAME_KIND.requestBody, jobId, upload.sent, data);
          if (!(await this.link.sendBinary(terminalId, frame))) {
            throw new OutpostError(
              'REQUEST_FAILED',
              "the terminal's connection was lost while the request body was sent; the request was cut off",
            );
          }
          upload.sent += data.length;
        }
      }
      this.link.send(terminalId, { type: 'body.end', jobId, bodyBytes: upload.sent });
      this.settle(jobId, undefined);
    } catch (err) {
      this.settle(jobId, toUploadError(err));
    }
  }

  /** The direct executor reads the body; the upload settles when it was read to the end. */
  streamFor(jobId: string): AsyncIterable<Buffer> | undefined {
    const upload = this.active.get(jobId);
    if (!upload) return undefined;
    const settle = (err: OutpostError | undefined) => this.settle(jobId, err);
    return {
      async *[Symbol.asyncIterator]() {
        try {
          for await (const piece of upload.source) {
            if (upload.aborted) throw upload.aborted;
            upload.sent += piece.length;
            yield piece;
          }
          settle(undefined);
        } catch (err) {
          settle(toUploadError(err));
          throw err;
        }
      },
    };
  }

  /** The agent's request consumed bytes up to `confirmed`. */
  credit(jobId: string, confirmed: number): void {
    const upload = this.active.get(jobId);
    if (!upload) return;
    upload.confirmed = Math.max(upload.confirmed, confirmed);
    upload.wake?.();
  }

  /** The job ended: an upload still in progress fails with that reason. */
  abort(jobId: string, reason: OutpostError): void {
    const upload = this.active.get(jobId);
    if (!upload) return;
    upload.aborted = reason;
    upload.wake?.();
    this.settle(jobId, reason);
  }

  private settle(jobId: string, err: OutpostError | undefined): void {
    const upload = this.active.get(jobId);
    if (!upload) return;
    this.active.delete(jobId);
    if (err) {
      this.logger.info('request body upload failed', { jobId, code: err.code });
      upload.reject(err);
    } else upload.resolve(upload.sent);
  }
}

function toUploadError(err: unknown): OutpostError {
  if (err instanceof OutpostError) return err;
  return new OutpostError(
    'REQUEST_FAILED',
    `the request body upload was cut off: ${(err as Error).message}`,
    {},
    err,
  );
}
