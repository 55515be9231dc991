/**
 * Names and other text that people read on a terminal. Control characters (C0, DEL and C1) in a
 * name could clear a screen, move the cursor or forge lines when a CLI prints it, so the API
 * refuses them in names, and the CLIs escape them in whatever text came from elsewhere.
 */
import { z } from 'zod';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// eslint-disable-next-line no-control-regex
const CONTROL_ALL = /[\u0000-\u001f\u007f-\u009f]/g;

/** True when the text holds a control character (U+0000-U+001F, U+007F or U+0080-U+009F). */
export function hasControlCharacters(text: string): boolean {
  return CONTROL.test(text);
}

/** The text with every control character written as `\xNN`, safe to print on a terminal. */
export function escapeControlCharacters(text: string): string {
  return text.replace(CONTROL_ALL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** The schema of a display name (terminals, accounts): 1-200 characters, no control characters. */
export function displayNameSchema() {
  return z
    .string()
    .trim()
    .min(1)
    .max(200)
    .refine((name) => !hasControlCharacters(name), {
      message: 'may not contain control characters (U+0000-U+001F, U+007F-U+009F)',
    });
}
