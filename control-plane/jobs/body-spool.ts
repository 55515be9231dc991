/**
 * Response bodies on the control plane: each job's body is appended to its own file as it
 * arrives and read back by API callers as it grows. The file is the buffer between a terminal
 * and a slow caller, so memory stays bounded whatever the body's size; a resent chunk (after a
 * reconnect) is recognized by its offset and written once.
 */
import { EventEmitter } from 'node:events';
import { createWriteStream, mkdirSync, promises as fsp, statSync, type WriteStream } from 'node:fs';
import path from 'node:path';

import { OutpostError } from '../../shared/errors.js';

interface OpenSpool {
  stream: WriteStream;
  size: number;
  pending: Promise<void>;
}

/** Appends and reads job bodies under one folder. */
export class BodySpool {
  private readonly open = new Map<string, OpenSpool>();
  /** Writers being closed: an append waits for them, or it would count bytes still in flight. */
  private readonly closing = new Map<string, Promise<void>>();
  private readonly events = new EventEmitter();

  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.events.setMaxListeners(0);
  }

  /** The file of a job's body. */
  pathOf(jobId: string): string {
    return path.join(this.dir, `${jobId}.body`);
  }

  /** Bytes of a job's body held so far. */
  size(jobId: string): number {
    const o = this.open.get(jobId);
    if (o) return o.size;
    try {
      return statSync(this.pathOf(jobId)).size;
    } catch {
      return 0;
    }
  }

  /**
   * Appends a chunk that starts at `offset`. Bytes already held are skipped; a chunk past the end
   * (a gap) is refused with PROTOCOL_ERROR carrying `details.gap` and `details.held`, so that the
   * sender can be told to resume from there. Resolves when the bytes are written, which is what
   * credit is granted on.
   */
  async append(jobId: string, offset: number, data: Buffer): Promise<number> {
    await this.closing.get(jobId);
    let o = this.open.get(jobId);
    if (!o) {
      const size = this.size(jobId);
      o = {
        stream: createWriteStream(this.pathOf(jobId), { flags: 'a', mode: 0o600 }),
        size,
        pending: Promise.resolve(),
      };
      this.open.set(jobId, o);
    }
    const spool = o;
    const run = spool.pending.then(async () => {
      if (offset > spool.size) {
        throw new OutpostError(
          'PROTOCOL_ERROR',
          `body chunk at ${offset} leaves a gap after ${spool.size}`,
          { gap: true, held: spool.size },
        );
      }
      const skip = spool.size - offset;
      if (skip >= data.length) return;
      const part = skip > 0 ? data.subarray(skip) : data;
      await new Promise<void>((resolve, reject) =>
        spool.stream.write(part, (err) => (err ? reject(err) : resolve())),
      );
      spool.size += part.length;
      this.events.emit(jobId);
    });
    spool.pending = run.catch(() => undefined);
    await run;
    return spool.size;
  }

  /** Drops what was held (a resend from zero after the control plane lost its copy). */
  async reset(jobId: string): Promise<void> {
    await this.close(jobId);
    await fsp.rm(this.pathOf(jobId), { force: true });
  }

  /** Closes the writer of a job (the body is complete or abandoned) and wakes readers. */
  async close(jobId: string): Promise<void> {
    const o = this.open.get(jobId);
    if (o) {
      this.open.delete(jobId);
      const done = o.pending.then(() => new Promise<void>((resolve) => o.stream.end(resolve)));
      this.closing.set(jobId, done);
      await done;
      if (this.closing.get(jobId) === done) this.closing.delete(jobId);
    } else await this.closing.get(jobId);
    this.events.emit(jobId);
  }

  /** Waits until the body of a job changes (more bytes, or closed) or the signal aborts. */
  changed(jobId: string, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.events.off(jobId, done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.events.on(jobId, done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** Wakes every reader of a job (its state changed). */
  notify(jobId: string): void {
    this.events.emit(jobId);
  }

  /**
   * Reads a job's body from the start as it grows, until `isComplete()` says no more will come.
   * Yields chunks of at most `chunkBytes`; memory stays bounded by one chunk.
   */
  async *read(
    jobId: string,
    isComplete: () => boolean,
    signal: AbortSignal,
    chunkBytes = 256 * 1024,
  ): AsyncGenerator<Buffer> {
    let offset = 0;
    let handle: fsp.FileHandle | undefined;
    try {
      for (;;) {
        if (signal.aborted) return;
        const complete = isComplete();
        const size = this.size(jobId);
        if (offset < size) {
          handle ??= await fsp.open(this.pathOf(jobId), 'r');
          const buf = Buffer.allocUnsafe(Math.min(chunkBytes, size - offset));
          const { bytesRead } = await handle.read(buf, 0, buf.length, offset);
          if (bytesRead === 0) continue;
          offset += bytesRead;
          yield buf.subarray(0, bytesRead);
          continue;
        }
        if (complete) return;
        const wait = this.changed(jobId, signal);
        // Re-check after subscribing so that a change between the checks is not missed.
        if (this.size(jobId) > offset || isComplete()) continue;
        await Promise.race([wait, new Promise((r) => setTimeout(r, 1000))]);
      }
    } finally {
      await handle?.close();
    }
  }

  /** Reads a whole body into memory (for `?wait=true` answers of bounded size). */
  async readAll(jobId: string): Promise<Buffer> {
    try {
      return await fsp.readFile(this.pathOf(jobId));
    } catch {
      return Buffer.alloc(0);
    }
  }

  /** Deletes a job's body. */
  async remove(jobId: string): Promise<void> {
    await this.close(jobId);
    await fsp.rm(this.pathOf(jobId), { force: true });
  }
}
