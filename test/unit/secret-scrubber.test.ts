import { describe, expect, it } from 'vitest';

import { SecretScrubber } from '../../shared/executor/secret-scrubber.js';

function run(scrubber: SecretScrubber, chunks: string[]): string {
  const out = chunks.map((c) => scrubber.chunk(Buffer.from(c)));
  return Buffer.concat([...out, scrubber.flush()]).toString();
}

describe('the secret scrubber of job results', () => {
  it('masks secrets, nested values and credential header values with as many stars as bytes', () => {
    const basic = `Basic ${Buffer.from('alice:pa55word!').toString('base64')}`;
    const scrubber = new SecretScrubber([
      { username: 'alice', password: 'pa55word!', headers: { 'X-Key': 'key-123456' } },
      { accessToken: 'at-9876543210' },
      basic,
    ]);
    const body = `{"auth":"${basic}","k":"key-123456","t":"Bearer at-9876543210","u":"alice"}`;
    const masked = run(scrubber, [body]);
    expect(masked.length).toBe(body.length);
    expect(masked).toBe(
      `{"auth":"${'*'.repeat(basic.length)}","k":"**********","t":"Bearer *************","u":"alice"}`,
    );
  });

  it('finds a secret split across chunks, and releases every byte exactly once', () => {
    const scrubber = new SecretScrubber([{ token: 'abcdefghijkl' }]);
    expect(run(scrubber, ['xx abcde', 'fghij', 'kl yy', ' end'])).toBe('xx ************ yy end');
  });

  it('masks header values and passes everything through when there is no secret', () => {
    const scrubber = new SecretScrubber([{ token: 'tok-abcdef' }]);
    expect(
      scrubber.headers({ 'x-echo': 'Bearer tok-abcdef', 'set-cookie': ['a=tok-abcdef'] }),
    ).toEqual({
      'x-echo': 'Bearer **********',
      'set-cookie': ['a=**********'],
    });
    const none = new SecretScrubber([{}, undefined]);
    const data = Buffer.from('untouched');
    expect(none.chunk(data)).toBe(data);
  });
});
