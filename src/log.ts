/**
 * Operator log: one line per event, human-readable or JSON lines, on
 * stderr. Whatever a client or QEMU chose is escaped (`escapeUnsafe`): one
 * message is one line, and nothing in it drives the operator's terminal.
 */

import { escapeUnsafe, hasUnsafe, quoteUnsafe } from './util/unsafe-text.ts';

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = 'text' | 'json';

export type LogFields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  error(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  /** Whether `--trace` is on: every message logged with client and direction. */
  readonly tracing: boolean;
  /**
   * One message, going `direction` (`from-client`, `to-qemu`, `from-qemu`,
   * `to-client`); `fields` say whose. In text, the message ends the line
   * as it is, but for characters a terminal would act on (escaped); in
   * JSON, it is the `message` member.
   */
  trace(direction: string, fields: LogFields, message: string | Buffer): void;
  /** Logs at `level` and above from now on (a reload). */
  setLevel(level: LogLevel): void;
}

export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  trace: boolean;
  /** Where lines go; stderr by default. */
  sink?: (line: string) => void;
  /** Clock, for tests. */
  now?: () => Date;
}

/** A field value written bare must not be taken for two values, or for a quoted one. */
const NEEDS_QUOTES = /[\s"=\\]/;

export function createLogger(options: LoggerOptions): Logger {
  let threshold = LOG_LEVELS.indexOf(options.level);
  const sink = options.sink ?? ((line: string) => process.stderr.write(line + '\n'));
  const now = options.now ?? (() => new Date());
  const emit = (level: LogLevel | 'trace', msg: string, fields: LogFields = {}, tail?: string): void => {
    if (level !== 'trace' && LOG_LEVELS.indexOf(level) > threshold) return;
    const time = now().toISOString();
    if (options.format === 'json') {
      sink(escapeUnsafe(JSON.stringify({ time, level, msg, ...fields, ...(tail !== undefined && { message: tail }) })));
      return;
    }
    let line = `${time} ${level.toUpperCase().padEnd(5)} ${escapeUnsafe(msg)}`;
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      const text = String(v);
      line += ` ${k}=${text === '' || NEEDS_QUOTES.test(text) || hasUnsafe(text) ? quoteUnsafe(text) : text}`;
    }
    sink(tail === undefined ? line : `${line} ${escapeUnsafe(tail)}`);
  };
  return {
    error: (m, f) => emit('error', m, f),
    warn: (m, f) => emit('warn', m, f),
    info: (m, f) => emit('info', m, f),
    debug: (m, f) => emit('debug', m, f),
    tracing: options.trace,
    trace: (direction, fields, message) => {
      if (!options.trace) return;
      const text = typeof message === 'string' ? message : message.toString('utf8');
      emit('trace', direction, fields, text.replace(/\r?\n$/, ''));
    },
    setLevel: (level) => {
      threshold = LOG_LEVELS.indexOf(level);
    },
  };
}
