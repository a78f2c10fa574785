/** Operator log: one line per event, human-readable or JSON lines, on stderr. */

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
  trace(direction: string, peer: string, data: string | Buffer): void;
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

export function createLogger(options: LoggerOptions): Logger {
  const threshold = LOG_LEVELS.indexOf(options.level);
  const sink = options.sink ?? ((line: string) => process.stderr.write(line + '\n'));
  const now = options.now ?? (() => new Date());
  const emit = (level: LogLevel | 'trace', msg: string, fields: LogFields = {}): void => {
    if (level !== 'trace' && LOG_LEVELS.indexOf(level) > threshold) return;
    const time = now().toISOString();
    if (options.format === 'json') {
      sink(JSON.stringify({ time, level, msg, ...fields }));
      return;
    }
    let line = `${time} ${level.toUpperCase().padEnd(5)} ${msg}`;
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      const text = String(v);
      line += ` ${k}=${/[\s"=]/.test(text) || text === '' ? JSON.stringify(text) : text}`;
    }
    sink(line);
  };
  return {
    error: (m, f) => emit('error', m, f),
    warn: (m, f) => emit('warn', m, f),
    info: (m, f) => emit('info', m, f),
    debug: (m, f) => emit('debug', m, f),
    tracing: options.trace,
    trace: (direction, peer, data) => {
      if (!options.trace) return;
      const text = typeof data === 'string' ? data : data.toString('utf8');
      emit('trace', 'trace', { dir: direction, peer, data: text.replace(/\r\n$/, '') });
    },
  };
}
