import type { Logger } from '../log.ts';

/**
 * Connections of one endpoint logged one by one ("client connected",
 * "client disconnected") in a window of CONNECTION_LOG_WINDOW_MS; the
 * window's others are one line when it ends. Tools sharing a monitor make
 * a few connections a minute; a peer connecting and closing in a loop made
 * 7,000 a second, 1.5 MB of log a second, and the log is the operator's.
 */
export const CONNECTIONS_LOGGED = 100;
export const CONNECTION_LOG_WINDOW_MS = 60_000;

/** What a ConnectionLog needs of time: now, and a call at a later time. */
export interface LogClock {
  now(): number;
  after(ms: number, then: () => void): void;
}

const REAL_CLOCK: LogClock = {
  now: () => Date.now(),
  after: (ms, then) => void setTimeout(then, ms).unref(),
};

/**
 * Whether each connection of one endpoint is logged. A connection's two
 * lines go together: one whose arrival was logged has its end logged
 * too, whatever ends it, and one whose arrival was not has neither.
 */
export class ConnectionLog {
  private windowStart = -Infinity;
  private logged = 0;
  private unlogged = 0;

  constructor(
    private readonly log: Logger,
    private readonly endpoint: string,
    private readonly clock: LogClock = REAL_CLOCK,
  ) {}

  /** A connection arrived: whether to log it (its arrival, and later its end). */
  admit(): boolean {
    const now = this.clock.now();
    if (now - this.windowStart >= CONNECTION_LOG_WINDOW_MS) {
      this.windowStart = now;
      this.logged = 0;
    }
    if (this.logged < CONNECTIONS_LOGGED) {
      this.logged++;
      return true;
    }
    if (this.unlogged++ === 0) this.clock.after(this.windowStart + CONNECTION_LOG_WINDOW_MS - now, () => this.summarize());
    return false;
  }

  private summarize(): void {
    this.log.warn('connections not logged one by one', { endpoint: this.endpoint, connections: this.unlogged, why: `more than ${CONNECTIONS_LOGGED} in ${CONNECTION_LOG_WINDOW_MS / 1000} s` });
    this.unlogged = 0;
  }
}
