/**
 * Text from elsewhere printed on a terminal: control characters are refused in names and
 * escaped in the agent's human output; allowlist entries print in the form they are read back.
 */
import { describe, expect, it } from 'vitest';

import { formatAllowEntry, parseAllowEntry } from '../../agent/allow-entry.js';
import { formatStatus, type StatusReport } from '../../agent/status-report.js';
import {
  displayNameSchema,
  escapeControlCharacters,
  hasControlCharacters,
} from '../../shared/display-text.js';

const EVIL = 'evil\u001b[2J\r\n\u0000\u007f\u009b';

describe('control characters', () => {
  it('are found in C0, DEL and C1, and not in Latin-1 letters or other scripts', () => {
    expect(hasControlCharacters(EVIL)).toBe(true);
    expect(hasControlCharacters('a\u0085b')).toBe(true);
    expect(hasControlCharacters('café ☃ Ω')).toBe(false);
  });

  it('are escaped as \\xNN, every one of them', () => {
    expect(escapeControlCharacters(EVIL)).toBe('evil\\x1b[2J\\x0d\\x0a\\x00\\x7f\\x9b');
  });

  it('make a display name invalid', () => {
    expect(displayNameSchema().safeParse('evil\u001b[2J').success).toBe(false);
    expect(displayNameSchema().safeParse('  plain name ').data).toBe('plain name');
  });
});

describe('allowlist entries', () => {
  it('print an IPv6 address with a port in brackets, which parses back to the same entry', () => {
    const printed = formatAllowEntry({ host: '::1', port: 28401 });

    expect(printed).toBe('[::1]:28401');
    expect(parseAllowEntry(printed)).toEqual({ host: '::1', port: 28401 });
  });

  it('print other entries as HOST, HOST:PORT or a bare IPv6 address', () => {
    expect(formatAllowEntry({ host: '::1', port: null })).toBe('::1');
    expect(formatAllowEntry({ host: 'api.example.com', port: 8443 })).toBe('api.example.com:8443');
    expect(formatAllowEntry({ host: '10.0.0.1', port: null })).toBe('10.0.0.1');
  });
});

describe('the status table', () => {
  it('escapes control characters in names, hosts, warnings and errors', () => {
    const report: StatusReport = {
      enrolled: true,
      terminalId: 'trm_1',
      name: EVIL,
      controlPlaneUrl: 'http://127.0.0.1:1',
      connected: false,
      connectedSince: null,
      lastHeartbeatAt: null,
      version: '0.1.0',
      running: false,
      pid: null,
      startedAt: null,
      uptimeSeconds: null,
      dataDir: '/tmp/x',
      jobs: { running: 0, succeeded: 0, failed: 0, succeededLastHour: 0, failedLastHour: 0 },
      lastError: 'bad\rline',
      lastErrorAt: null,
      accounts: [
        {
          id: 'acc_1',
          name: 'acc\u001b]0;title\u0007',
          authType: 'none',
          host: 'h\u001b',
          secretFields: [],
          warnings: ['warn\u001b[31m'],
          certificatesExpiringSoon: [],
        },
      ],
    };

    const out = formatStatus(report, 0);

    expect(hasControlCharacters(out.replaceAll('\n', ''))).toBe(false);
    expect(out).toContain('Terminal          evil\\x1b[2J\\x0d\\x0a\\x00\\x7f\\x9b (trm_1)\n');
    expect(out).toContain('Last error        bad\\x0dline (time unknown)\n');
    expect(out).toContain('  acc\\x1b]0;title\\x07 [none] h\\x1b  secrets: none set\n');
    expect(out).toContain('    ! warn\\x1b[31m\n');
  });
});
