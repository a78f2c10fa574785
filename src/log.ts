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
  /** Where lines go, every one (a test's, an embedder's); without it, `output`. */
  sink?: (line: string) => void;
  /** Where lines go without a sink: stderr by default, at most LOG_BACKLOG bytes behind its reader. */
  output?: LogStream;
  /** Clock, for tests. */
  now?: () => Date;
}

/**
 * Bytes of log lines that may wait for a slow reader of the log (a paused
 * pager, a busy journald) before further lines are dropped: what a client
 * makes qmp-mux log cannot grow its memory past this.
 */
export const LOG_BACKLOG = 1024 * 1024;

/** A stream the log can fall behind on (stderr: a pipe or socket to whatever reads it). */
export interface LogStream {
  write(text: string): unknown;
  /** Bytes written and not yet taken by the reader. */
  readonly writableLength: number;
  once(event: 'drain', listener: () => void): unknown;
}

/** A field value written bare must not be taken for two values, or for a quoted one. */
const NEEDS_QUOTES = /[\s"=\\]/;

export function createLogger(options: LoggerOptions): Logger {
  let threshold = LOG_LEVELS.indexOf(options.level);
  const now = options.now ?? (() => new Date());
  const format = (level: LogLevel | 'trace', msg: string, fields: LogFields = {}, tail?: string): string => {
    const time = now().toISOString();
    if (options.format === 'json') return escapeUnsafe(JSON.stringify({ time, level, msg, ...fields, ...(tail !== undefined && { message: tail }) }));
    let line = `${time} ${level.toUpperCase().padEnd(5)} ${escapeUnsafe(msg)}`;
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      const text = String(v);
      line += ` ${k}=${text === '' || NEEDS_QUOTES.test(text) || hasUnsafe(text) ? quoteUnsafe(text) : text}`;
    }
    return tail === undefined ? line : `${line} ${escapeUnsafe(tail)}`;
  };
  const sink = options.sink ?? behind(options.output ?? process.stderr, (dropped) => format('warn', 'log lines dropped: the log was not read as fast as it was written', { dropped }));
  const emit = (level: LogLevel | 'trace', msg: string, fields?: LogFields, tail?: string): void => {
    if (level !== 'trace' && LOG_LEVELS.indexOf(level) > threshold) return;
    sink(format(level, msg, fields, tail));
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

/**
 * Writes lines to `stream` while at most LOG_BACKLOG bytes wait for its
 * reader with them, and drops them beyond (counted): once the reader has
 * caught up, the `notice` line says how many went, before anything else.
 */
function behind(stream: LogStream, notice: (dropped: number) => string): (line: string) => void {
  let dropped = 0;
  let listening = false;
  const sayDropped = (): void => {
    if (dropped === 0) return;
    const line = notice(dropped);
    dropped = 0;
    stream.write(line + '\n');
  };
  const drained = (): void => {
    listening = false;
    sayDropped();
  };
  return (line) => {
    // A line alone is written whatever its length (a large message under --trace): it exists already.
    if (stream.writableLength > 0 && stream.writableLength + line.length + 1 > LOG_BACKLOG) {
      dropped++;
      // One listener, however often the reader falls behind before the stream empties.
      if (!listening) stream.once('drain', drained);
      listening = true;
      return;
    }
    sayDropped();
    stream.write(line + '\n');
  };
}
