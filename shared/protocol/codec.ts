/** Parsing of JSON frames against the protocol schemas. */
import type { z } from 'zod';

import { OutpostError } from '../errors.js';

/** Parses a text frame with a schema; throws PROTOCOL_ERROR saying what was wrong. */
export function parseFrame<T extends z.ZodType>(schema: T, text: string): z.infer<T> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new OutpostError('PROTOCOL_ERROR', 'a text frame was not valid JSON', {}, err);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const type = (value as { type?: unknown } | null)?.type;
    const issue = parsed.error.issues[0];
    if (typeof type === 'string' && issue?.path.length === 1 && issue.path[0] === 'type') {
      // The schema's own text lists every type and would not fit in a close reason.
      throw new OutpostError('PROTOCOL_ERROR', `unknown message type "${type.slice(0, 40)}"`);
    }
    throw new OutpostError(
      'PROTOCOL_ERROR',
      `message ${typeof type === 'string' ? `"${type.slice(0, 40)}"` : 'without a type'} is malformed: ` +
        `${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim(),
    );
  }
  return parsed.data;
}
