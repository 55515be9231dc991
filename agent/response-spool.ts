/**
 * The agent's copy of a response body while it is uploaded. A small body stays in memory (and
 * goes into the job's journal row when the job ends, so an unacknowledged result survives a
 * restart); past `MEMORY_BYTES` the body goes to segment files `<jobId>.<n>` in the spool folder,
 * deleted as the control plane confirms them. The target is read at disk speed until the body
 * runs too far ahead of what the control plane confirmed; then reading the target waits
 * (backpressure). A body not yet confirmed when the connection drops is resent from the
 * confirmed offset. Files are deleted off the job's path, one at a time (see `SpoolSweeper`).
 */
import { EventEmitter } from 'node:events';
import { existsSync, promises as fsp, statSync } from 'node:fs';
import path from 'node:path';

/** Size of one segment file. */
const SEGMENT_BYTES = 8 * 1024 * 1024;
/**
 * Bytes a body may hold in memory before it goes to a file. Smaller than a segment: only whole
 * segments below what the control plane confirmed are dropped, and the control plane holds up
 * to this much of a body in memory only, so a body it could lose in a crash is never dropped here.
 */
export const MEMORY_BYTES = 1024 * 1024;
/**
 * Bytes accepted but not yet written to a file before `write` waits for the file: the target is
 * read on while earlier bytes are written, and small chunks are written together.
 */
const QUEUED_BYTES = 1024 * 1024;
/**
 * Bytes last written that are also kept in memory for the upload to read. More than the body may
 * run ahead of what was confirmed (plus a queued write), so that the upload, which sends from
 * at least the confirmed offset, reads from memory rather than back from the file.
 */
const RECENT_BYTES = 6 * 1024 * 1024;
/**
 * How far the target's body may run ahead of what the control plane confirmed: enough to keep
 * the upload busy (the credit window is 8 MB), little enough to stay within `RECENT_BYTES`.
 */
export const MAX_AHEAD_BYTES = 4 * 1024 * 1024;

/**
 * Deletes spool files in the background, one at a time: deletions are slow on some disks (a
 * trim on unlink) and, run all at once, would queue in libuv's few threads ahead of the file
 * calls of running jobs.
 */
class SpoolSweeper {
  private readonly queue: Array<{ target: string; recursive: boolean }> = [];
  private running = false;

  /** Queues a file (or, `recursive`, a folder of the old layout) for deletion. */
  add(target: string, recursive = false): void {
    this.queue.push({ target, recursive });
    if (!this.running) void this.run();
  }

  private async run(): Promise<void> {
    this.running = true;
    for (let next = this.queue.shift(); next; next = this.queue.shift()) {
      await fsp.rm(next.target, { force: true, recursive: next.recursive }).catch(() => undefined);
    }
    this.running = false;
  }
}

/** The one sweeper of this process. */
export const spoolSweeper = new SpoolSweeper();

/** The job a spool file name belongs to: `<jobId>.<n>` files, or an old-layout `<jobId>` folder. */
export function jobOfSpoolFile(name: string): string {
  return name.replace(/\.\d+$/, '');
}

/** The spooled body of one job. */
export class ResponseSpool {
  /** Bytes written so far. */
  produced = 0;
  /** Bytes the control plane holds. */
  confirmed = 0;
  /** No more bytes will be written. */
  complete = false;
  /** The body while it never left memory; undefined once it went to files. */
  private memory: Buffer[] | undefined = [];
  /** Set when the body has started going to files (its memory is being written out). */
  private spilled = false;
  private lowestSegment = 0;
  private readonly events = new EventEmitter();
  /** Bytes accepted for the files and not yet written (they count in `produced` once written). */
  private queue: Buffer[] = [];
  private queueBytes = 0;
  /** The run writing the queue out, while one runs. */
  private flushing: Promise<void> | undefined;
  /** Why writing to the files failed; every later write and `flushed` throw it. */
  private writeError: Error | undefined;
  /**
   * The partly filled segment being appended to, kept open so that a chunk costs one write
   * rather than an open, a write and a close. Closed once full, so that `confirm` never removes
   * an open file (which Windows refuses).
   */
  private appending: { index: number; handle: fsp.FileHandle } | undefined;
  /**
   * The bytes written last (already on disk), so that the upload, which sends them right after,
   * reads them from memory instead of opening the file again.
   */
  private recent: Array<{ offset: number; data: Buffer }> = [];
  private recentBytes = 0;
  /** The segment the upload last read from a file, kept open for its next reads. */
  private reading: { index: number; handle: Promise<fsp.FileHandle> } | undefined;

  /**
   * `legacyDir` is the per-job folder of spools written before files were flat (a result left
   * unacknowledged across an upgrade).
   */
  private constructor(
    private readonly root: string,
    private readonly jobId: string,
    private readonly legacyDir?: string,
  ) {
    this.events.setMaxListeners(0);
  }

  /** A new, empty spool for a job; touches no file until the body passes `MEMORY_BYTES`. */
  static create(root: string, jobId: string): ResponseSpool {
    return new ResponseSpool(root, jobId);
  }

  /** The spool of a finished job whose whole body was stored in its journal row. */
  static fromJournal(root: string, jobId: string, body: Buffer): ResponseSpool {
    const spool = new ResponseSpool(root, jobId);
    spool.memory = [body];
    spool.produced = body.length;
    spool.complete = true;
    return spool;
  }

  /** Reopens the spool files of a finished job after a restart (for resending). */
  static reopen(root: string, jobId: string, bodyBytes: number): ResponseSpool {
    const legacy = path.join(root, jobId);
    const spool = new ResponseSpool(root, jobId, existsSync(legacy) ? legacy : undefined);
    spool.memory = undefined;
    spool.spilled = true;
    const count = Math.ceil(bodyBytes / SEGMENT_BYTES);
    const segments: number[] = [];
    for (let i = 0; i < count; i++) if (existsSync(spool.segmentPath(i))) segments.push(i);
    spool.lowestSegment = segments[0] ?? count;
    const last = segments.at(-1);
    spool.produced =
      last === undefined
        ? bodyBytes
        : last * SEGMENT_BYTES + statSync(spool.segmentPath(last)).size;
    spool.confirmed = spool.lowestSegment * SEGMENT_BYTES;
    spool.complete = true;
    return spool;
  }

  private segmentPath(index: number): string {
    return this.legacyDir
      ? path.join(this.legacyDir, `seg-${index}`)
      : path.join(this.root, `${this.jobId}.${index}`);
  }

  /** The lowest offset still held (bytes below were confirmed and dropped). */
  get lowestOffset(): number {
    return this.lowestSegment * SEGMENT_BYTES;
  }

  /** The whole body when it never left memory (to store in the journal), else undefined. */
  memoryBody(): Buffer | undefined {
    return this.memory && !this.spilled ? Buffer.concat(this.memory, this.produced) : undefined;
  }

  /**
   * Appends bytes; waits first while the body is too far ahead of what was confirmed, and while
   * too many bytes wait to be written. Bytes count in `produced` once held (memory or file).
   */
  async write(data: Buffer, signal: AbortSignal): Promise<void> {
    while (this.produced - this.confirmed > MAX_AHEAD_BYTES && !signal.aborted)
      await this.changed(signal);
    if (this.writeError) throw this.writeError;
    if (this.memory && !this.spilled && this.produced + data.length <= MEMORY_BYTES) {
      this.memory.push(data);
      this.produced += data.length;
      this.events.emit('change');
      return;
    }
    // Past memory: the files start with what memory held (written first, see `drain`).
    this.spilled = true;
    this.queue.push(data);
    this.queueBytes += data.length;
    this.flushing ??= this.drain().finally(() => (this.flushing = undefined));
    while (this.queueBytes > QUEUED_BYTES && this.flushing !== undefined) await this.flushing;
    this.throwIfFailed();
  }

  /** Throws why writing failed, if it did (a method: the check is re-read after awaits). */
  private throwIfFailed(): void {
    if (this.writeError) throw this.writeError;
  }

  /** Writes the queue out, in order, several chunks per write. */
  private async drain(): Promise<void> {
    try {
      if (this.memory) {
        // Readers keep reading memory until the file holds it.
        await this.store(0, this.memory);
        this.memory = undefined;
      }
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        const bytes = await this.store(this.produced, batch);
        this.queueBytes -= bytes;
        this.produced += bytes;
        this.events.emit('change');
      }
    } catch (err) {
      this.writeError = err instanceof Error ? err : new Error(String(err));
      this.queue = [];
      this.queueBytes = 0;
      this.events.emit('change');
    }
  }

  /** Resolves once every accepted byte is held; throws when writing them failed. */
  async flushed(): Promise<void> {
    while (this.flushing !== undefined) await this.flushing;
    this.throwIfFailed();
  }

  /**
   * Writes chunks at `offset` (the end of what the segment files hold) into the segments, one
   * gathered write per segment (no copy into one buffer); returns the bytes written.
   */
  private async store(offset: number, chunks: Buffer[]): Promise<number> {
    let at = offset;
    let pending = chunks;
    while (pending.length > 0) {
      const index = Math.floor(at / SEGMENT_BYTES);
      let room = (index + 1) * SEGMENT_BYTES - at;
      const parts: Buffer[] = [];
      const rest: Buffer[] = [];
      for (const chunk of pending) {
        if (room === 0) rest.push(chunk);
        else if (chunk.length <= room) {
          parts.push(chunk);
          room -= chunk.length;
        } else {
          parts.push(chunk.subarray(0, room));
          rest.push(chunk.subarray(room));
          room = 0;
        }
      }
      if (this.appending?.index !== index) {
        await this.closeAppending();
        const handle = await fsp.open(this.segmentPath(index), 'a', 0o600);
        this.appending = { index, handle };
      }
      await writeAll(this.appending.handle, parts);
      for (const part of parts) {
        this.remember(at, part);
        at += part.length;
      }
      pending = rest;
      if (at % SEGMENT_BYTES === 0) await this.closeAppending();
    }
    return at - offset;
  }

  private remember(offset: number, data: Buffer): void {
    this.recent.push({ offset, data });
    this.recentBytes += data.length;
    while (this.recentBytes - this.recent[0]!.data.length >= RECENT_BYTES) {
      this.recentBytes -= this.recent.shift()!.data.length;
    }
  }

  /** Bytes at `offset` from those held in memory (as parts), or undefined when not all held. */
  private fromMemory(offset: number, length: number): Buffer[] | undefined {
    if (this.memory) {
      let start = 0;
      const held = this.memory.map((data) => {
        const piece = { offset: start, data };
        start += data.length;
        return piece;
      });
      const found = slice(held, offset, length);
      if (found) return found;
    }
    return slice(this.recent, offset, length);
  }

  private async closeAppending(): Promise<void> {
    const open = this.appending;
    this.appending = undefined;
    await open?.handle.close();
  }

  /** Marks the body complete. */
  finish(): void {
    // Only after `flushed`: `produced` is then the whole body.
    void this.closeAppending().catch(() => undefined);
    this.complete = true;
    this.events.emit('change');
  }

  /** Records what the control plane holds and drops whole segments below it. */
  confirm(offset: number): void {
    if (offset <= this.confirmed) return;
    this.confirmed = Math.min(offset, this.produced);
    const keepFrom = Math.floor(this.confirmed / SEGMENT_BYTES);
    if (this.reading && this.reading.index < keepFrom) this.closeReading();
    for (let i = this.lowestSegment; i < keepFrom; i++) spoolSweeper.add(this.segmentPath(i));
    this.lowestSegment = Math.max(this.lowestSegment, keepFrom);
    this.events.emit('change');
  }

  /**
   * Reads up to `max` bytes at `offset` (which must be at or above `lowestOffset`), as parts in
   * order: bytes held in memory are not copied (the caller copies them once, into its frame).
   */
  async read(offset: number, max: number): Promise<Buffer[]> {
    const index = Math.floor(offset / SEGMENT_BYTES);
    const within = offset - index * SEGMENT_BYTES;
    const length = Math.min(max, SEGMENT_BYTES - within, this.produced - offset);
    if (length <= 0) return [];
    const held = this.fromMemory(offset, length);
    if (held) return held;
    if (this.reading?.index !== index) {
      this.closeReading();
      const handle = fsp.open(this.segmentPath(index), 'r');
      handle.catch(() => undefined);
      this.reading = { index, handle };
    }
    const handle = await this.reading.handle;
    const buf = Buffer.allocUnsafe(length);
    const { bytesRead } = await handle.read(buf, 0, length, within);
    return [buf.subarray(0, bytesRead)];
  }

  /** Closes the read handle (its segment is done with, or about to be deleted). */
  private closeReading(): void {
    const open = this.reading;
    this.reading = undefined;
    void open?.handle.then((h) => h.close()).catch(() => undefined);
  }

  /** Resolves on the next change (bytes written, confirmed, completed) or abort. */
  changed(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.events.off('change', done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.events.on('change', done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** Wakes anyone waiting (the connection changed). */
  poke(): void {
    this.events.emit('change');
  }

  /** Deletes the spool: its files are queued for deletion off the caller's path. */
  async remove(): Promise<void> {
    this.memory = undefined;
    this.closeReading();
    if (!this.spilled) return;
    await this.flushed().catch(() => undefined);
    await this.closeAppending();
    if (this.legacyDir) {
      spoolSweeper.add(this.legacyDir, true);
      return;
    }
    const last = Math.floor(Math.max(0, this.produced - 1) / SEGMENT_BYTES);
    for (let i = this.lowestSegment; i <= last; i++) spoolSweeper.add(this.segmentPath(i));
  }
}

/** The bytes [offset, offset + length) of consecutive pieces, or undefined when not all held. */
function slice(
  pieces: Array<{ offset: number; data: Buffer }>,
  offset: number,
  length: number,
): Buffer[] | undefined {
  const first = pieces[0];
  if (!first || offset < first.offset) return undefined;
  const until = offset + length;
  const parts: Buffer[] = [];
  let at = offset;
  for (const { offset: start, data } of pieces) {
    const end = start + data.length;
    if (end <= at) continue;
    parts.push(data.subarray(at - start, Math.min(data.length, until - start)));
    at = Math.min(end, until);
    if (at === until) break;
  }
  return at === until ? parts : undefined;
}

/** Writes every byte of `parts`, in order, at the end of a file opened for appending. */
async function writeAll(handle: fsp.FileHandle, parts: Buffer[]): Promise<void> {
  let rest = parts;
  while (rest.length > 0) {
    let written = (await handle.writev(rest)).bytesWritten;
    // A short write: go on from the first byte not written.
    while (rest.length > 0 && written >= rest[0]!.length) {
      written -= rest[0]!.length;
      rest = rest.slice(1);
    }
    if (written > 0) rest = [rest[0]!.subarray(written), ...rest.slice(1)];
  }
}
