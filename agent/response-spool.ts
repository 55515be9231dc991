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
/** Bytes last written that are also kept in memory for the upload to read. */
const RECENT_BYTES = 512 * 1024;
/** How far the target's body may run ahead of what the control plane confirmed. */
export const MAX_AHEAD_BYTES = 64 * 1024 * 1024;

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
  private writeChain: Promise<void> = Promise.resolve();
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

  /** Appends bytes; waits first while the body is too far ahead of what was confirmed. */
  async write(data: Buffer, signal: AbortSignal): Promise<void> {
    while (this.produced - this.confirmed > MAX_AHEAD_BYTES && !signal.aborted)
      await this.changed(signal);
    if (this.memory && !this.spilled && this.produced + data.length <= MEMORY_BYTES) {
      this.memory.push(data);
      this.produced += data.length;
      this.events.emit('change');
      return;
    }
    const spill = this.memory !== undefined && !this.spilled;
    this.spilled = true;
    const run = this.writeChain.then(async () => {
      if (spill && this.memory) {
        // The body outgrew memory: its file starts with what memory held (readers keep reading
        // memory until the file has it).
        await this.store(0, Buffer.concat(this.memory, this.produced));
        this.memory = undefined;
      }
      await this.store(this.produced, data);
      this.produced += data.length;
      this.events.emit('change');
    });
    this.writeChain = run.catch(() => undefined);
    await run;
  }

  /** Writes bytes at `offset` (the end of what the segment files hold) into the segments. */
  private async store(offset: number, data: Buffer): Promise<void> {
    let at = offset;
    let rest = data;
    while (rest.length > 0) {
      const index = Math.floor(at / SEGMENT_BYTES);
      const room = (index + 1) * SEGMENT_BYTES - at;
      const part = rest.subarray(0, room);
      if (this.appending?.index !== index) {
        await this.closeAppending();
        const handle = await fsp.open(this.segmentPath(index), 'a', 0o600);
        this.appending = { index, handle };
      }
      for (let done = 0; done < part.length;) {
        done += (await this.appending.handle.write(part, done, part.length - done)).bytesWritten;
      }
      this.remember(at, part);
      at += part.length;
      rest = rest.subarray(part.length);
      if (at % SEGMENT_BYTES === 0) await this.closeAppending();
    }
  }

  private remember(offset: number, data: Buffer): void {
    this.recent.push({ offset, data });
    this.recentBytes += data.length;
    while (this.recentBytes - this.recent[0]!.data.length >= RECENT_BYTES) {
      this.recentBytes -= this.recent.shift()!.data.length;
    }
  }

  /** Bytes at `offset` from those held in memory, or undefined when they are not held. */
  private fromMemory(offset: number, length: number): Buffer | undefined {
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
    this.writeChain = this.writeChain.then(() => this.closeAppending()).catch(() => undefined);
    this.complete = true;
    this.events.emit('change');
  }

  /** Records what the control plane holds and drops whole segments below it. */
  confirm(offset: number): void {
    if (offset <= this.confirmed) return;
    this.confirmed = Math.min(offset, this.produced);
    const keepFrom = Math.floor(this.confirmed / SEGMENT_BYTES);
    for (let i = this.lowestSegment; i < keepFrom; i++) spoolSweeper.add(this.segmentPath(i));
    this.lowestSegment = Math.max(this.lowestSegment, keepFrom);
    this.events.emit('change');
  }

  /** Reads up to `max` bytes at `offset` (which must be at or above `lowestOffset`). */
  async read(offset: number, max: number): Promise<Buffer> {
    const index = Math.floor(offset / SEGMENT_BYTES);
    const within = offset - index * SEGMENT_BYTES;
    const length = Math.min(max, SEGMENT_BYTES - within, this.produced - offset);
    if (length <= 0) return Buffer.alloc(0);
    const held = this.fromMemory(offset, length);
    if (held) return held;
    const handle = await fsp.open(this.segmentPath(index), 'r');
    try {
      const buf = Buffer.allocUnsafe(length);
      const { bytesRead } = await handle.read(buf, 0, length, within);
      return buf.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
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
    if (!this.spilled) return;
    await this.writeChain;
    await this.closeAppending();
    if (this.legacyDir) {
      spoolSweeper.add(this.legacyDir, true);
      return;
    }
    const last = Math.floor(Math.max(0, this.produced - 1) / SEGMENT_BYTES);
    for (let i = this.lowestSegment; i <= last; i++) spoolSweeper.add(this.segmentPath(i));
  }
}

/** The bytes [offset, offset + length) from consecutive pieces, or undefined when not all held. */
function slice(
  pieces: Array<{ offset: number; data: Buffer }>,
  offset: number,
  length: number,
): Buffer | undefined {
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
  return at === until ? Buffer.concat(parts, length) : undefined;
}
