import type { Socket } from 'node:net';
import type { Options } from '../config/options.ts';
import type { EventFanOut } from '../events/fan-out.ts';
import type { EventJournal } from '../events/journal.ts';
import type { Logger } from '../log.ts';
import type { SocketFlusher } from '../net/socket-writer.ts';
import type { AuditLog } from '../ops/audit-log.ts';
import type { MuxMetrics } from '../ops/mux-metrics.ts';
import type { Greeting } from '../qmp/greeting.ts';
import type { TooLargeMessage, UpstreamMessage } from '../qmp/upstream-message.ts';
import { UpstreamConnection, type UpstreamState } from '../upstream/connection.ts';
import type { UpstreamSource } from '../upstream/source.ts';
import { assertNever } from '../util/assert.ts';
import type { Dispatcher } from './dispatcher.ts';

/** How much of a message from QEMU goes into a log line. */
const EXCERPT = 200;
const excerpt = (bytes: Buffer): string => bytes.toString('utf8', 0, Math.min(bytes.length, EXCERPT));

export interface UpstreamLinkOptions {
  source: UpstreamSource;
  dispatcher: Dispatcher;
  fanOut: EventFanOut;
  journal: EventJournal;
  audit: AuditLog | undefined;
  metrics: MuxMetrics;
  log: Logger;
  flusher: SocketFlusher;
  /** The longest message from QEMU passed on, and how long QEMU may take to greet: read for each connection (a reload may change them). */
  settings: Readonly<Pick<Options, 'maxUpstreamMessage' | 'timeouts'>>;
  /** QEMU greeted and negotiated: waiting clients can be greeted. */
  ready(greeting: Greeting): void;
  /** A negotiated QEMU went away: its clients have seen all it sent. */
  gone(): void;
}

/**
 * The mux's side of its link to QEMU: takes each connection its source
 * makes, negotiates it, and hands what QEMU says on: events to the journal
 * and the fan-out, replies to the dispatcher. When QEMU's replies stop
 * matching what is in flight, or QEMU goes, it says so and asks the source
 * for a new connection.
 */
export class UpstreamLink {
  /** QEMU's greeting while a connection is negotiated. */
  greeting: Greeting | undefined;
  /** Counted for `query-proxy`. */
  readonly counts = { replyMismatches: 0, tooLargeFromQemu: 0 };
  private connection: UpstreamConnection | undefined;
  private stopping = false;
  private warnedSilentUpstream = false;

  constructor(private readonly options: UpstreamLinkOptions) {}

  /** Where the link is. */
  get state(): UpstreamState {
    if (this.stopping) return 'stopped';
    return this.connection && this.connection.state !== 'closed' ? this.connection.state : 'connecting';
  }

  /** A connection to QEMU, just made. */
  attach(socket: Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const { options } = this;
    const connection = new UpstreamConnection(
      socket,
      {
        ready: (greeting) => this.onReady(connection, greeting),
        message: (m) => this.onMessage(connection, m),
        read: (bytes) => {
          options.metrics.upstreamBytesIn(bytes);
          options.fanOut.flush();
        },
        anomaly: (what, bytes) => options.log.debug(`QEMU sent ${what}`, { bytes: excerpt(bytes) }),
        closed: (reason) => this.onClosed(connection, reason),
      },
      { maxMessageSize: options.settings.maxUpstreamMessage, greetingTimeoutMs: options.settings.timeouts.upstreamGreetingMs, flusher: options.flusher },
    );
    this.connection = connection;
  }

  /** qmp-mux is stopping: no other connection is taken, and losing this one is no loss. */
  stop(): void {
    this.stopping = true;
  }

  /** Closes the connection (qmp-mux has stopped). */
  close(): void {
    this.connection?.close('qmp-mux stopping');
  }

  private onReady(connection: UpstreamConnection, greeting: Greeting): void {
    const { options } = this;
    this.greeting = greeting;
    this.warnedSilentUpstream = false;
    options.source.ready();
    options.metrics.upstreamReady();
    options.log.info('QEMU connected', { version: greeting.version, capabilities: greeting.capabilities.join(',') });
    options.dispatcher.attach((bytes) => {
      if (options.log.tracing) options.log.trace('to-qemu', { peer: 'qemu' }, bytes);
      options.metrics.upstreamBytesOut(bytes.length);
      connection.send(bytes);
    });
    options.ready(greeting);
  }

  private onMessage(connection: UpstreamConnection, m: UpstreamMessage): void {
    const { options } = this;
    if (options.log.tracing) options.log.trace('from-qemu', { peer: 'qemu' }, m.bytes);
    // Events that came before this message go out before it.
    if (m.kind !== 'event') options.fanOut.flush();
    if (m.tooLarge) this.tooLarge(m, m.tooLarge);
    switch (m.kind) {
      case 'event': {
        // Too large to pass on: said and counted above.
        if (m.tooLarge) return;
        const name = m.event ?? '';
        const seq = options.journal.append(name, m.bytes);
        options.metrics.event(name);
        options.audit?.event({ name, seq, bytes: m.bytes });
        options.fanOut.add(name, m.bytes, seq);
        return;
      }
      case 'return':
      case 'error': {
        const problem = options.dispatcher.reply(m);
        if (problem !== undefined) this.lostTrack(connection, problem, m);
        return;
      }
      case 'greeting':
      case 'unknown':
        options.log.warn('unexpected message from QEMU', { bytes: excerpt(m.bytes) });
        return;
      default:
        assertNever(m.kind);
    }
  }

  /**
   * QEMU sent a message longer than qmp-mux passes on. It costs no one but
   * its own client: a reply becomes an error for that client (the command
   * report says so), an event is dropped, the stream goes on.
   */
  private tooLarge(m: UpstreamMessage, tooLarge: TooLargeMessage): void {
    this.counts.tooLargeFromQemu++;
    const kind = m.kind === 'event' ? 'event' : m.kind === 'return' || m.kind === 'error' ? 'reply' : 'other';
    this.options.metrics.upstreamTooLarge(kind);
    if (kind === 'reply') return;
    const what = kind === 'event' ? `an event (${m.event ?? 'name unknown'})` : 'a message';
    this.options.log.error(`QEMU sent ${what} longer than qmp-mux passes on; dropped`, { bytes: tooLarge.length, maxUpstreamMessage: tooLarge.limit, head: excerpt(m.bytes) });
  }

  /**
   * QEMU sent a reply that cannot answer anything in flight: its view of
   * the conversation and qmp-mux's differ, and any reply may now be someone
   * else's. The connection is dropped and made again; clients whose
   * commands were in flight are ended (their replies cannot be told apart),
   * the others carry on.
   */
  private lostTrack(connection: UpstreamConnection, problem: string, m: UpstreamMessage): void {
    const { options } = this;
    this.counts.replyMismatches++;
    options.log.error("QEMU's replies no longer match the commands in flight; reconnecting to QEMU", { why: problem, bytes: excerpt(m.bytes) });
    this.connection = undefined;
    this.greeting = undefined;
    options.metrics.upstreamLost();
    connection.close('replies stopped matching the commands in flight');
    options.dispatcher.detach();
    if (!this.stopping) options.source.lost();
  }

  private onClosed(connection: UpstreamConnection, reason: string): void {
    if (this.connection !== connection) return;
    const { options } = this;
    this.connection = undefined;
    options.metrics.upstreamLost();
    const wasReady = this.greeting !== undefined;
    this.greeting = undefined;
    if (this.stopping) {
      options.dispatcher.detach();
      return;
    }
    if (wasReady) {
      options.log.warn('QEMU disconnected', { reason });
      options.gone();
    } else if (!this.warnedSilentUpstream) {
      this.warnedSilentUpstream = true;
      options.log.warn('QEMU connection failed before negotiation, retrying', { reason });
    }
    options.dispatcher.detach();
    options.source.lost();
  }
}
