import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { AgentStore } from '../../agent/agent-store.js';
import { ResponseSpool } from '../../agent/response-spool.js';
import { BodySpool, MEMORY_BYTES } from '../../control-plane/jobs/body-spool.js';

const JOB = 'job_0123456789abcdef0123456789abcdef';

async function readAll(spool: BodySpool, stored: () => Buffer | undefined): Promise<Buffer> {
  const parts: Buffer[] = [];
  const signal = new AbortController().signal;
  for await (const part of spool.read(JOB, () => true, stored, signal)) parts.push(part);
  return Buffer.concat(parts);
}

describe('the spools keep small bodies in memory', () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'outpost-spools-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('control plane: a small body makes no file and is taken whole at the end', async () => {
    const dir = path.join(tempDir(), 'bodies');
    const spool = new BodySpool(dir);
    expect(await spool.append(JOB, 0, Buffer.from('hello '))).toBe(6);
    // A resent chunk is held once; a gap is refused with what is held.
    expect(await spool.append(JOB, 0, Buffer.from('hello world'))).toBe(11);
    await expect(spool.append(JOB, 20, Buffer.from('x'))).rejects.toMatchObject({
      details: { gap: true, held: 11 },
    });
    expect(readdirSync(dir)).toEqual([]);
    expect((await readAll(spool, () => undefined)).toString()).toBe('hello world');
    const taken = spool.takeMemory(JOB);
    expect(taken?.toString()).toBe('hello world');
    expect(spool.size(JOB)).toBe(0);
    expect((await readAll(spool, () => taken)).toString()).toBe('hello world');
  });

  it('control plane: a body past the threshold goes to its file, whole and in order', async () => {
    const dir = path.join(tempDir(), 'bodies');
    const spool = new BodySpool(dir);
    const body = Buffer.alloc(MEMORY_BYTES + 300_000);
    for (let i = 0; i < body.length; i++) body[i] = i % 251;
    for (let at = 0; at < body.length; at += 100_000) {
      await spool.append(JOB, at, body.subarray(at, at + 100_000));
    }
    expect(spool.takeMemory(JOB)).toBeUndefined();
    expect(existsSync(spool.pathOf(JOB))).toBe(true);
    expect((await readAll(spool, () => undefined)).equals(body)).toBe(true);
    await spool.close(JOB);
    expect(spool.size(JOB)).toBe(body.length);
  });

  it('agent: a small body stays in memory; a large one goes to flat segment files', async () => {
    const root = tempDir();
    const signal = new AbortController().signal;
    const small = ResponseSpool.create(root, JOB);
    await small.write(Buffer.from('small answer'), signal);
    await small.flushed();
    small.finish();
    expect(small.memoryBody()?.toString()).toBe('small answer');
    expect(Buffer.concat(await small.read(0, 100)).toString()).toBe('small answer');
    expect(readdirSync(root)).toEqual([]);

    const large = ResponseSpool.create(root, JOB);
    const chunk = Buffer.alloc(256 * 1024, 7);
    for (let i = 0; i < 8; i++) await large.write(chunk, signal);
    await large.flushed();
    large.finish();
    expect(large.produced).toBe(8 * chunk.length);
    expect(large.memoryBody()).toBeUndefined();
    expect(readdirSync(root)).toEqual([`${JOB}.0`]);
    const read = Buffer.concat(await large.read(0, 8 * chunk.length));
    expect(read.equals(Buffer.concat(Array.from({ length: 8 }, () => chunk)))).toBe(true);

    // After a restart the files are found again, and the body is whole.
    const reopened = ResponseSpool.reopen(root, JOB, 8 * chunk.length);
    expect(reopened.produced).toBe(8 * chunk.length);
    expect(reopened.lowestOffset).toBe(0);
    await large.remove();
    for (let i = 0; i < 100 && readdirSync(root).length > 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(readdirSync(root)).toEqual([]);
  });

  it('agent: a body kept in memory is journaled with the outcome and let go on acknowledgement', async () => {
    const store = new AgentStore(tempDir());
    try {
      expect(store.journal.start(JOB, 'acct_x')).toBe(true);
      store.journal.finish(
        JOB,
        { state: 'succeeded', error: null, bodyBytes: 5 },
        { status: 200, headers: { 'content-type': 'text/plain' } },
        Buffer.from('hello'),
      );
      const [entry] = store.journal.unacked();
      expect(entry).toMatchObject({ jobId: JOB, state: 'finished', status: 200, bodyBytes: 5 });
      expect(entry?.body?.toString()).toBe('hello');
      store.journal.ack(JOB);
      await new Promise((r) => setTimeout(r, 30));
      expect(store.journal.unacked()).toEqual([]);
      expect(store.journal.entry(JOB)?.body).toBeNull();
    } finally {
      store.close();
    }
  });
});
