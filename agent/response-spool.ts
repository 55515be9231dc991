/**
 * The agent's copy of a response body while it is uploaded: segment files on disk, deleted as
 * the control plane confirms them. The target is read at disk speed until the body runs too far
 * ahead of what the control plane confirmed; then reading the target waits (backpressure). A
 * body not yet confirmed when the connection drops is resent from the confirmed offset.
 */
import { EventEmitter } from 'node:events';
import { mkdirSync, promises as fsp, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/** Size of one segment file. */
const SEGMENT_BYTES = 8 * 1024 * 1024;
/** Bytes last written that are also kept in memory for the upload to read. */
const RECENT_BYTES = 512 * 1024;
/** How far the target's body may run ahead of what the control plane confirmed. */
export const MAX_AHEAD_BYTES = 64 * 1024 * 1024;

/** The spooled body of one job. */
export class ResponseSpool {
  /** Bytes written so far. */
  produced = 0;
  /** Bytes the control plane holds. */
  confirmed = 0;
  /** No more bytes will be written. */
  complete = false;
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

  private constructor(private readonly dir: string) {
    this.events.setMaxListeners(0);
  }

  /** A new, empty spool for a job. */
  static create(root: string, jobId: string): ResponseSpool {
    const dir = path.join(root, jobId);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return new ResponseSpool(dir);
  }

  /** Reopens the spool of a finished job after a restart (for resending). */
  static reopen(root: string, jobId: string, bodyBytes: number): ResponseSpool {
    const spool = ResponseSpool.create(root, jobId);
    const segments = readdirSync(spool.dir)
      .map((f) => Number(/^seg-(\d+)$/.exec(f)?.[1]))
      .filter((n) => Number.isInteger(n))
      .sort((a, b) => a - b);
    spool.lowestSegment = segments[0] ?? Math.ceil(bodyBytes / SEGMENT_BYTES);
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
    return path.join(this.dir, `seg-${index}`);
  }

  /** The lowest offset still held on disk (bytes below were confirmed and dropped). */
  get lowestOffset(): number {
    return this.lowestSegment * SEGMENT_BYTES;
  }

  /** Appends bytes; waits first while the body is too far ahead of what was confirmed. */
  async write(data: Buffer, signal: AbortSignal): Promise<void> {
    while (this.produced - this.confirmed > MAX_AHEAD_BYTES && !signal.aborted)
      await this.changed(signal);
    const run = this.writeChain.then(async () => {
      let rest = data;
      while (rest.length > 0) {
        const index = Math.floor(this.produced / SEGMENT_BYTES);
        const room = (index + 1) * SEGMENT_BYTES - this.produced;
        const part = rest.subarray(0, room);
        if (this.appending?.index !== index) {
          await this.closeAppending();
          const handle = await fsp.open(this.segmentPath(index), 'a', 0o600);
          this.appending = { index, handle };
        }
        for (let at = 0; at < part.length;) {
          at += (await this.appending.handle.write(part, at, part.length - at)).bytesWritten;
        }
        this.remember(this.produced, part);
        this.produced += part.length;
        rest = rest.subarray(part.length);
        if (this.produced % SEGMENT_BYTES === 0) await this.closeAppending();
      }
      this.events.emit('change');
    });
    this.writeChain = run.catch(() => undefined);
    await run;
  }

  private remember(offset: number, data: Buffer): void {
    this.recent.push({ offset, data });
    this.recentBytes += data.length;
    while (this.recentBytes - this.recent[0]!.data.length >= RECENT_BYTES) {
      this.recentBytes -= this.recent.shift()!.data.length;
    }
  }

  /** Bytes at `offset` from the recent ones, or undefined when they are no longer held. */
  private fromRecent(offset: number, length: number): Buffer | undefined {
    const first = this.recent[0];
    if (!first || offset < first.offset) return undefined;
    const until = offset + length;
    const parts: Buffer[] = [];
    let at = offset;
    for (const { offset: start, data } of this.recent) {
      const end = start + data.length;
      if (end <= at) continue;
      parts.push(data.subarray(at - start, Math.min(data.length, until - start)));
      at = Math.min(end, until);
      if (at === until) break;
    }
    return at === until ? Buffer.concat(parts, length) : undefined;
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
    for (let i = this.lowestSegment; i < keepFrom; i++)
      void fsp.rm(this.segmentPath(i), { force: true });
    this.lowestSegment = Math.max(this.lowestSegment, keepFrom);
    this.events.emit('change');
  }

  /** Reads up to `max` bytes at `offset` (which must be at or above `lowestOffset`). */
  async read(offset: number, max: number): Promise<Buffer> {
    const index = Math.floor(offset / SEGMENT_BYTES);
    const within = offset - index * SEGMENT_BYTES;
    const length = Math.min(max, SEGMENT_BYTES - within, this.produced - offset);
    if (length <= 0) return Buffer.alloc(0);
    const held = this.fromRecent(offset, length);
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

  /** Deletes the spool. */
  async remove(): Promise<void> {
    await this.writeChain;
    await this.closeAppending();
    await fsp.rm(this.dir, { recursive: true, force: true });
  }
}
