/** Reads a secret value from a hidden prompt (a terminal) or from stdin (a pipe), never argv. */
import { createInterface } from 'node:readline';

import { OutpostError } from '../shared/errors.js';
import { registerSecret } from '../shared/logger.js';

/** Reads one value; a trailing newline from a pipe is dropped. JSON objects stay JSON. */
export async function readSecretValue(field: string): Promise<unknown> {
  let raw: string;
  if (process.stdin.isTTY) {
    raw = await new Promise<string>((resolve) => {
      const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
      process.stderr.write(`${field}: `);
      // Echo nothing while the secret is typed.
      (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = () => {};
      rl.question('', (answer) => {
        rl.close();
        process.stderr.write('\n');
        resolve(answer);
      });
    });
  } else {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    raw = Buffer.concat(chunks)
      .toString('utf8')
      .replace(/\r?\n$/, '');
  }
  if (raw === '')
    throw new OutpostError('INVALID_SECRET', `no value given for ${field}`, {
      field: `secrets.${field}`,
    });
  registerSecret(raw);
  if (field === 'headers') {
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      throw new OutpostError(
        'INVALID_SECRET',
        'headers must be a JSON object of names and values',
        { field: 'secrets.headers' },
      );
    }
  }
  return raw;
}
