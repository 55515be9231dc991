/**
 * Response bodies on the control plane while they arrive. A body is held in memory until it
 * passes `MEMORY_BYTES`; only then is it written to a file of its own, which is the buffer
 * between a terminal and a slow caller, so memory stays bounded whatever the body's size. A body
 * still in memory when its job ends is taken (`takeMemory`) and stored with the job's final state,
 * so that a small job touches no file. A resent chunk (after a reconnect) is recognized by its
 * offset and held once. After a crash, a body that was only in memory is gone: the terminal is
 * asked to resend from what is held (0), and it still holds those bytes (see the agent's spool).
 */
import { EventEmitter } from 'node:events';
import { createWriteStream, mkdirSync, promises as fsp, statSync, type WriteStream } from 'node:fs';
import path from 'node:path';

import { OutpostError } from '../../shared/errors.js';

/**
 * Bytes of a body held in memory before it goes to a file. Kept well under the agent's spool
 * segment (8 MB): the agent drops only whole segments below what is confirmed, so bytes confirmed
 * from memory here are never dropped there before they are stored.
 */
export const MEMORY_BYTES = 1024 * 1024;

/**
 * Bytes last written to a body's file that are also kept for its readers, so that a reader that
 * keeps up is handed the chunks as they came instead of reading them back from the file.
 */
const RECENT_BYTES = 4 * 1024 * 1024;

interface OpenSpool {
  /** The body's bytes while it is in memory; undefined once it went to the file. */
  memory: Buffer[] | undefined;
  stream: WriteStream | undefined;
  size: number;
  pending: Promise<void>;
  /** The chunks last written to the file, with their offsets (see `RECENT_BYTES`). */
  recent: Array<{ offset: number; data: Buffer }>;
  recentBytes: number;
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

  /** Bytes of a job's body held so far, in memory or in its file. */
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
   * sender can be told to resume from there. Resolves when the bytes are held (in memory, or
   * written to the file), which is what credit is granted on.
   */
  async append(jobId: string, offset: number, data: Buffer): Promise<number> {
    const closing = this.closing.get(jobId);
    if (closing) await closing;
    let o = this.open.get(jobId);
    if (!o) {
      const size = this.size(jobId);
      // A body that already has a file (a restart, or a writer closed early) goes on there.
      o = {
        memory: size === 0 ? [] : undefined,
        stream: undefined,
        size,
        pending: Promise.resolve(),
        recent: [],
        recentBytes: 0,
      };
      this.open.set(jobId, o);
    }
    const spool = o;
    if (spool.memory && !spool.stream) {
      // Nothing is being written: a chunk that fits is held at once, without a file call.
      const part = this.newPart(spool, offset, data);
      if (part === undefined) return spool.size;
      if (spool.size + part.length <= MEMORY_BYTES) {
        spool.memory.push(part);
        spool.size += part.length;
        this.events.emit(jobId);
        return spool.size;
      }
      // Past the threshold: the file starts with what memory held, then takes this chunk.
      // Readers go on reading memory until the file holds it all.
      const stream = createWriteStream(this.pathOf(jobId), { flags: 'a', mode: 0o600 });
      spool.stream = stream;
      const run = writeTo(stream, Buffer.concat([...spool.memory, part])).then(() => {
        spool.size += part.length;
        spool.memory = undefined;
        this.events.emit(jobId);
      });
      spool.pending = run.catch(() => undefined);
      await run;
      return spool.size;
    }
    const run = spool.pending.then(async () => {
      const part = this.newPart(spool, offset, data);
      if (part === undefined) return;
      spool.stream ??= createWriteStream(this.pathOf(jobId), { flags: 'a', mode: 0o600 });
      await writeTo(spool.stream, part);
      remember(spool, spool.size, part);
      spool.size += part.length;
      this.events.emit(jobId);
    });
    spool.pending = run.catch(() => undefined);
    await run;
    return spool.size;
  }

  /** The part of a chunk not yet held; undefined when all of it is; throws on a gap. */
  private newPart(spool: OpenSpool, offset: number, data: Buffer): Buffer | undefined {
    if (offset > spool.size) {
      throw new OutpostError(
        'PROTOCOL_ERROR',
        `body chunk at ${offset} leaves a gap after ${spool.size}`,
        { gap: true, held: spool.size },
      );
    }
    const skip = spool.size - offset;
    if (skip >= data.length) return undefined;
    return skip > 0 ? data.subarray(skip) : data;
  }

  /** Waits until every append of a job so far is held. */
  async settle(jobId: string): Promise<void> {
    await this.closing.get(jobId);
    await this.open.get(jobId)?.pending;
  }

  /**
   * Takes a body that never left memory, for storing with its job; undefined when the body is in
   * a file (or there is none). Synchronous, so that the caller stores it in the same turn.
   */
  takeMemory(jobId: string): Buffer | undefined {
    const o = this.open.get(jobId);
    if (!o?.memory || o.stream) return undefined;
    this.open.delete(jobId);
    return Buffer.concat(o.memory, o.size);
  }

  /** Drops what was held (a resend from zero after the control plane lost its copy). */
  async reset(jobId: string): Promise<void> {
    this.takeMemory(jobId);
    await this.close(jobId);
    await fsp.rm(this.pathOf(jobId), { force: true });
  }

  /**
   * Closes the writer of a job (the body is complete or abandoned) and wakes readers. A body
   * still in memory that nobody took is written to its file first, so nothing held is lost.
   */
  async close(jobId: string): Promise<void> {
    const o = this.open.get(jobId);
    if (o) {
      this.open.delete(jobId);
      const done = o.pending.then(async () => {
        if (o.memory && !o.stream && o.size > 0) {
          o.stream = createWriteStream(this.pathOf(jobId), { flags: 'a', mode: 0o600 });
          await writeTo(o.stream, Buffer.concat(o.memory, o.size));
        }
        const stream = o.stream;
        if (stream) await new Promise<void>((resolve) => stream.end(resolve));
      });
      this.closing.set(jobId, done);
      await done.catch(() => undefined);
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
   * Reads a job's body from the start as it grows, until `isComplete()` says no more will come;
   * `stored()` gives the body stored with the job, if it ended while in memory. Yields chunks of
   * at most `chunkBytes`; memory stays bounded by one chunk (or the in-memory body).
   */
  async *read(
    jobId: string,
    isComplete: () => boolean,
    stored: () => Buffer | undefined,
    signal: AbortSignal,
    chunkBytes = 1024 * 1024,
  ): AsyncGenerator<Buffer> {
    let offset = 0;
    let handle: fsp.FileHandle | undefined;
    try {
      for (;;) {
        if (signal.aborted) return;
        const o = this.open.get(jobId);
        if (o?.memory && offset < o.size) {
          // Copied out: the held parts stay the spool's, and may be resliced or dropped.
          const whole = Buffer.concat(o.memory, o.size);
          const part = Buffer.from(whole.subarray(offset, offset + chunkBytes));
          offset += part.length;
          yield part;
          continue;
        }
        const size = o?.memory ? 0 : this.size(jobId);
        const recent = o && offset < size ? recentAt(o, offset, chunkBytes) : undefined;
        if (recent) {
          offset += recent.length;
          yield recent;
          continue;
        }
        if (offset < size) {
          handle ??= await fsp.open(this.pathOf(jobId), 'r');
          const buf = Buffer.allocUnsafe(Math.min(chunkBytes, size - offset));
          const { bytesRead } = await handle.read(buf, 0, buf.length, offset);
          if (bytesRead === 0) continue;
          offset += bytesRead;
          yield buf.subarray(0, bytesRead);
          continue;
        }
        // Asked only once all that is held was read: a body stored with the job, or the file's
        // last bytes, are then read on the next turn (a state is final only after its bytes).
        if (isComplete()) {
          if (offset < this.size(jobId)) continue;
          const body = stored();
          for (let at = offset; body && at < body.length; at += chunkBytes) {
            yield body.subarray(at, at + chunkBytes);
          }
          return;
        }
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

/** Writes all of `data` to a stream; resolves once it is written. */
function writeTo(stream: WriteStream, data: Buffer): Promise<void> {
  return new Promise<void>((resolve, reject) =>
    stream.write(data, (err) => (err ? reject(err) : resolve())),
  );
}

/** Keeps a chunk just written for readers, dropping the oldest past `RECENT_BYTES`. */
function remember(spool: OpenSpool, offset: number, data: Buffer): void {
  spool.recent.push({ offset, data });
  spool.recentBytes += data.length;
  while (spool.recentBytes - spool.recent[0]!.data.length >= RECENT_BYTES) {
    spool.recentBytes -= spool.recent.shift()!.data.length;
  }
}

/** Up to `max` bytes at `offset` from the recent chunks (not copied), or undefined. */
function recentAt(spool: OpenSpool, offset: number, max: number): Buffer | undefined {
  for (const { offset: start, data } of spool.recent) {
    if (offset >= start && offset < start + data.length) {
      return data.subarray(offset - start, Math.min(data.length, offset - start + max));
    }
  }
  return undefined;
}
