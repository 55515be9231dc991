/**
 * The winston logger with secret redaction. A secret is registered with `registerSecret` the
 * moment it is read; every log line is then scrubbed of it, wherever it appears. Fields whose
 * names say they hold a secret are masked whatever their value.
 */
import winston from 'winston';
import Transport from 'winston-transport';

/** A logger as passed around the code: winston's, with child loggers per component and job. */
export type Logger = winston.Logger;

const registered = new Set<string>();
const SECRET_KEY = /pass(word|phrase)?|secret|token|authorization|cookie|private|^key$|keypem|pfx/i;
const MIN_SECRET_LENGTH = 4;
const MASK = '[REDACTED]';

/** Registers a value to be masked from every log line from now on. Short values are ignored. */
export function registerSecret(value: string | undefined | null): void {
  if (typeof value !== 'string' || value.length < MIN_SECRET_LENGTH) return;
  registered.add(value);
  // Base64 forms appear in Basic headers and encoded bodies.
  registered.add(Buffer.from(value).toString('base64'));
}

/** Registers every string value of a secrets object (nested objects included). */
export function registerSecrets(secrets: unknown): void {
  if (typeof secrets === 'string') registerSecret(secrets);
  else if (secrets && typeof secrets === 'object') {
    for (const v of Object.values(secrets)) registerSecrets(v);
  }
}

/** Removes every registered secret from a string, and escapes control characters. */
export function redactText(text: string): string {
  let out = text;
  for (const secret of registered) {
    if (out.includes(secret)) out = out.split(secret).join(MASK);
  }
  // Control characters from user text must not forge log lines or terminal escapes.
  return out.replace(
    // eslint-disable-next-line no-control-regex
    /[\u0000-\u0008\u000b-\u001f\u007f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}

/** Deep copy of a value with secret-named fields masked and registered secrets removed. */
export function redactValue(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[too deep]';
  if (typeof value === 'string') return redactText(value);
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  if (value instanceof Error) {
    return {
      name: value.name,
      message: redactText(value.message),
      code: (value as { code?: unknown }).code,
    };
  }
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] =
        SECRET_KEY.test(k) &&
        v !== null &&
        v !== undefined &&
        typeof v !== 'boolean' &&
        typeof v !== 'number'
          ? MASK
          : redactValue(v, depth + 1);
    }
    return out;
  }
  return value;
}

const redactFormat = winston.format((info) => {
  for (const key of Object.keys(info)) {
    if (key === 'level') continue;
    const value = info[key];
    info[key] = SECRET_KEY.test(key) && typeof value === 'string' ? MASK : redactValue(value);
  }
  return info;
});

/** One log line as kept in memory for the logs endpoint. */
export interface LogLine {
  time: string;
  level: string;
  message: string;
  [key: string]: unknown;
}

/** Keeps the most recent redacted lines in memory, bounded in count. */
export class RecentLinesTransport extends Transport {
  private readonly lines: LogLine[] = [];

  constructor(private readonly maxLines = 1000) {
    super({ level: 'debug' });
  }

  override log(info: Record<string, unknown>, next: () => void): void {
    const { level, message, timestamp, ...rest } = info;
    this.lines.push({
      ...rest,
      time: typeof timestamp === 'string' ? timestamp : new Date().toISOString(),
      level: String(level),
      message: String(message),
    });
    if (this.lines.length > this.maxLines) this.lines.splice(0, this.lines.length - this.maxLines);
    next();
  }

  /** Lines at or after `since`, at or above `level`, newest last, at most `limit`. */
  query(options: { since?: Date; level?: string; limit?: number }): LogLine[] {
    const rank = winston.config.npm.levels;
    const max = options.level ? (rank[options.level] ?? rank.debug) : rank.debug;
    const since = options.since?.getTime() ?? 0;
    const hits = this.lines.filter(
      (l) => (rank[l.level] ?? 0) <= max && Date.parse(l.time) >= since,
    );
    return hits.slice(-(options.limit ?? 500));
  }
}

/** Options of `createLogger`. */
export interface LoggerOptions {
  level?: string;
  /** JSON lines (for a service) or a readable line (for a terminal). */
  format?: 'json' | 'pretty';
  /** Where lines go; stderr by default so that stdout stays for command output. */
  stream?: NodeJS.WritableStream;
  extraTransports?: Transport[];
  component?: string;
}

/** Creates the root logger of a process. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const pretty = winston.format.printf((info) => {
    const { level, message, timestamp, component, ...rest } = info;
    const fields = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
    const tag = typeof component === 'string' ? `[${component}] ` : '';
    return `${String(timestamp)} ${level} ${tag}${String(message)}${fields}`;
  });
  const lineFormat = options.format === 'pretty' ? pretty : winston.format.json();
  return winston.createLogger({
    level: options.level ?? process.env.OUTPOST_LOG_LEVEL ?? 'info',
    defaultMeta: options.component ? { component: options.component } : undefined,
    format: winston.format.combine(winston.format.timestamp(), redactFormat()),
    transports: [
      new winston.transports.Stream({
        stream: options.stream ?? process.stderr,
        format: lineFormat,
      }),
      ...(options.extraTransports ?? []),
    ],
  });
}
