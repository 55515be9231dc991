/**
 * What `control-plane` prints when it cannot do its job: the server's own error code, the URL
 * and reason when the control plane cannot be reached, a port in use, and a bad master key
 * refused before anything is written.
 */
import { existsSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  cleanup,
  controlPlaneCommand,
  startControlPlane,
  tempDir,
  type ControlPlaneProc,
} from '../helpers/processes.js';

async function listening(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

describe('control-plane seal', () => {
  let cp: ControlPlaneProc;
  beforeAll(async () => {
    cp = await startControlPlane();
  });
  afterAll(async () => {
    await cp.stop();
    cleanup(cp.dataDir);
  });

  it('prints the server’s own code for a wrong API key', () => {
    const r = controlPlaneCommand(
      ['seal', '--terminal', 'trm_x', '--url', cp.url, '--api-key', 'wrong'],
      {},
      '{"token":"t"}',
    );

    expect([r.code, r.stderr]).toEqual([2, 'error UNAUTHENTICATED: the API key is not valid\n']);
  });

  it('says UNAVAILABLE with the URL and the reason when nothing listens there', async () => {
    const { server, port } = await listening();
    await new Promise((r) => server.close(r));
    const url = `http://127.0.0.1:${port}`;

    const r = controlPlaneCommand(
      ['seal', '--terminal', 'trm_x', '--url', url, '--api-key', 'k'],
      {},
      '{"token":"t"}',
    );

    expect([r.code, r.stderr]).toEqual([
      2,
      `error UNAVAILABLE: could not reach the control plane at ${url}: ECONNREFUSED\n`,
    ]);
  });
});

describe('control-plane start', () => {
  it('says the port is in use and how to pick another', async () => {
    const { server, port } = await listening();
    const dataDir = tempDir('cp-port');
    try {
      const r = controlPlaneCommand(['start', '--port', String(port), '--data-dir', dataDir], {
        OUTPOST_LOG_LEVEL: 'error',
      });

      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n').at(-1)).toBe(
        `error UNAVAILABLE: port ${port} on 127.0.0.1 is already in use: stop what listens` +
          ' there, or pick another port with --port (0 picks a free one)',
      );
    } finally {
      await new Promise((r) => server.close(r));
      cleanup(dataDir);
    }
  });

  it('refuses a malformed OUTPOST_MASTER_KEY before it writes the store or the admin key', () => {
    const parent = tempDir('cp-key');
    const dataDir = path.join(parent, 'data');
    try {
      const r = controlPlaneCommand(['start', '--port', '0', '--data-dir', dataDir], {
        OUTPOST_MASTER_KEY: 'not-a-key',
      });

      expect(r.code).toBe(2);
      expect(r.stderr).toContain(
        'error INVALID_SETTING: OUTPOST_MASTER_KEY must hold a 32-byte key',
      );
      expect(existsSync(path.join(dataDir, 'admin-api-key'))).toBe(false);
      expect(existsSync(dataDir) ? readdirSync(dataDir) : []).toEqual([]);
    } finally {
      cleanup(parent);
    }
  });
});
