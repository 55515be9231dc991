/** `terminal-agent allow`: what `list` prints is what `remove` takes back, IPv6 included. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { agentCommand, cleanup, tempDir } from '../helpers/processes.js';

describe('the local allowlist', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = tempDir('allow');
  });
  afterAll(() => cleanup(dataDir));

  it('lists an IPv6 entry with a port in brackets, and removes it by that same text', () => {
    const added = agentCommand(['allow', 'add', '[::1]:28401', '--data-dir', dataDir]);
    const listed = agentCommand(['allow', 'list', '--data-dir', dataDir]);
    const removed = agentCommand(['allow', 'remove', listed.stdout.trim(), '--data-dir', dataDir]);

    expect(added.stdout).toBe('Allowed [::1]:28401\n');
    expect(listed.stdout).toBe('[::1]:28401\n');
    expect(removed).toMatchObject({ code: 0, stdout: 'Removed [::1]:28401\n' });
  });
});
