import type { Endpoint } from '../downstream/endpoint.ts';
import { globMatcher } from '../policy/glob.ts';
import type { MonitorSession } from '../qmp/monitor-session.ts';
import { eventLines, withLiveSeq } from '../qmp/wire.ts';

/** The events one client chose to receive (`set-events`), within its endpoint's. */
export interface EventChoice {
  readonly patterns: readonly string[];
  accepts(name: string): boolean;
}

interface Pending {
  readonly name: string;
  /** QEMU's bytes. */
  readonly bytes: Buffer;
  /** Its number in the journal. */
  readonly seq: number;
  /** The bytes with the number added, made once, for endpoints that want it. */
  numbered?: Buffer;
}

/**
 * Fans QEMU's events out to the sessions that negotiated, by endpoint,
 * with the events each chose. Events read from QEMU in one go are joined
 * into one buffer, shared by every client that wants them all, so a burst
 * of events costs each client one write and no copy of its own. QEMU's
 * bytes go out unchanged, unless an endpoint asks for sequence numbers; a
 * client that chose its events gets a buffer of its own.
 */
export class EventFanOut {
  private pending: Pending[] = [];
  private readonly subscribers = new Map<Endpoint, Map<MonitorSession, EventChoice | undefined>>();

  /** The session receives its endpoint's events from now on. */
  subscribe(endpoint: Endpoint, session: MonitorSession): void {
    let sessions = this.subscribers.get(endpoint);
    if (!sessions) this.subscribers.set(endpoint, (sessions = new Map()));
    sessions.set(session, undefined);
  }

  unsubscribe(endpoint: Endpoint, session: MonitorSession): void {
    this.subscribers.get(endpoint)?.delete(session);
  }

  /** The session receives only the events `patterns` match, of its endpoint's (`["*"]`: all of them). */
  choose(endpoint: Endpoint, session: MonitorSession, patterns: readonly string[]): void {
    const sessions = this.subscribers.get(endpoint);
    if (!sessions?.has(session)) return;
    sessions.set(session, patterns.includes('*') ? undefined : { patterns: [...patterns], accepts: globMatcher(patterns) });
  }

  /** The events a session chose, if it chose. */
  choiceOf(endpoint: Endpoint, session: MonitorSession): EventChoice | undefined {
    return this.subscribers.get(endpoint)?.get(session);
  }

  /** An event from QEMU, numbered `seq`; it goes out at the next `flush`. */
  add(name: string, bytes: Buffer, seq: number): void {
    this.pending.push({ name, bytes, seq });
  }

  /** Delivers the events added so far (before anything that must come after them). */
  flush(): void {
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    let all: Buffer | undefined;
    for (const [endpoint, sessions] of this.subscribers) {
      if (sessions.size === 0) continue;
      const wanted = batch.filter((e) => endpoint.wantsEvent(e.name));
      if (wanted.length === 0) continue;
      const numbered = endpoint.options.eventSequence;
      const bytesOf = (e: Pending): Buffer => (numbered ? (e.numbered ??= withLiveSeq(e.bytes, e.seq)) : e.bytes);
      let shared: Buffer | undefined;
      for (const [session, choice] of sessions) {
        if (!choice) {
          shared ??= wanted.length === batch.length && !numbered ? (all ??= eventLines(batch.map(bytesOf))) : eventLines(wanted.map(bytesOf));
          session.event(shared);
          continue;
        }
        const chosen = wanted.filter((e) => choice.accepts(e.name));
        if (chosen.length > 0) session.event(eventLines(chosen.map(bytesOf)));
      }
    }
  }
}
