import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { SocketWriter, type SocketFlusher } from '../net/socket-writer.ts';
import { readGreeting, type Greeting } from '../qmp/greeting.ts';
import { UpstreamFramer } from '../qmp/upstream-framer.ts';
import type { UpstreamMessage } from '../qmp/upstream-message.ts';
import { upstreamNegotiation } from '../qmp/wire.ts';

/** Where qmp-mux's link to QEMU is, as reported: no connection (`connecting`), a connection's state, or `stopped`. */
export const UPSTREAM_STATES = ['connecting', 'greeting', 'negotiating', 'ready', 'stopped'] as const;
export type UpstreamState = (typeof UPSTREAM_STATES)[number];

/**
 * What follows each write to a TLS monitor of QEMU's. QEMU 7.2 acts on a
 * TLS record only once the next one arrives (it waits for its socket to be
 * readable again, while GnuTLS holds the rest of what it decrypted), so a
 * command would wait for the next command. A record of one space, which
 * QEMU's parser skips between messages, lets it through at once.
 */
const QEMU_TLS_NUDGE = Buffer.from(' ');

/** Where one connection to QEMU is: waiting for its `greeting`, `negotiating`, `ready`, or `closed`. */
export type ConnectionState = Extract<UpstreamState, 'greeting' | 'negotiating' | 'ready'> | 'closed';

export interface UpstreamConnectionOptions {
  /** Longest message from QEMU passed on as it is, bytes; a longer one is passed on as `tooLarge`. */
  maxMessageSize: number;
  /**
   * How long QEMU may take to greet, ms. Negotiation itself may wait much
   * longer (behind a command an earlier connection left running), and does.
   */
  greetingTimeoutMs: number;
  flusher: SocketFlusher;
}

export interface UpstreamConnectionEvents {
  /** QEMU greeted and accepted qmp-mux's negotiation. */
  ready(greeting: Greeting): void;
  /** A message after negotiation: a reply or an event. */
  message(message: UpstreamMessage): void;
  /** Everything in the `bytes` bytes just read has been passed on. */
  read(bytes: number): void;
  /** Something QEMU sent that qmp-mux could not use; logged, never fatal on its own. */
  anomaly(what: string, bytes: Buffer): void;
  /** The connection is gone. Called once. */
  closed(reason: string): void;
}

/**
 * One connection to a QEMU monitor: reads the greeting, negotiates once
 * (enabling `oob` when QEMU offers it), then carries commands and messages.
 * Its `qmp_capabilities` reply is a barrier: a reply QEMU still owed an
 * earlier connection comes before it (QEMU runs in-band commands one at a
 * time, in order) and is dropped.
 */
export class UpstreamConnection {
  state: ConnectionState = 'greeting';
  private readonly framer: UpstreamFramer;
  private greeting: Greeting | undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly out: SocketWriter;
  /** Unique to this connection: `qmp-mux:PID:RANDOM`. */
  private readonly negotiationId = `qmp-mux:${process.pid}:${randomBytes(6).toString('hex')}`;

  constructor(
    private readonly socket: Socket,
    private readonly events: UpstreamConnectionEvents,
    options: UpstreamConnectionOptions,
  ) {
    this.framer = new UpstreamFramer({ message: (m) => this.onMessage(m), garbage: (b) => events.anomaly('bytes outside any message', b) }, options.maxMessageSize);
    // A QEMU monitor busy with another client accepts the connection and says nothing.
    this.timer = setTimeout(() => this.close(`no greeting within ${options.greetingTimeoutMs} ms (is another client using the monitor?)`), options.greetingTimeoutMs);
    this.timer.unref();
    socket.setNoDelay?.(true);
    this.out = new SocketWriter(socket, options.flusher, 'encrypted' in socket ? QEMU_TLS_NUDGE : undefined);
    socket.on('data', (chunk: Buffer) => {
      this.framer.feed(chunk);
      events.read(chunk.length);
    });
    // A socket QEMU connected to (listen mode) is half-open: its EOF would otherwise leave the link looking alive.
    socket.on('end', () => this.close('connection closed'));
    socket.on('error', (err) => this.close(err.message));
    socket.on('close', () => this.close('connection closed'));
  }

  /** Sends one encoded command; commands sent in the same tick go out in one write. */
  send(bytes: Buffer): void {
    if (this.state === 'closed') return;
    this.out.write(bytes);
  }

  close(reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.timer);
    this.socket.destroy();
    this.events.closed(reason);
  }

  private onMessage(m: UpstreamMessage): void {
    switch (this.state) {
      case 'greeting': {
        if (m.kind !== 'greeting') {
          this.events.anomaly('message before the greeting', m.bytes);
          return;
        }
        const greeting = readGreeting(m.bytes);
        if (!greeting) {
          this.close('QEMU sent a greeting qmp-mux cannot read');
          return;
        }
        this.greeting = greeting;
        this.state = 'negotiating';
        clearTimeout(this.timer);
        this.out.write(upstreamNegotiation(greeting.capabilities, this.negotiationId));
        this.out.flush();
        return;
      }
      case 'negotiating': {
        const id = m.id && m.id.valueStart >= 0 ? m.bytes.toString('latin1', m.id.valueStart + 1, m.id.valueEnd - 1) : undefined;
        if (id !== this.negotiationId) {
          // A reply to a command of an earlier connection (QEMU answers whoever is connected); events cannot come yet.
          this.events.anomaly('message during negotiation', m.bytes);
          return;
        }
        if (m.kind !== 'return') {
          this.close(`QEMU refused capabilities negotiation: ${m.bytes.toString('utf8')}`);
          return;
        }
        this.state = 'ready';
        this.events.ready(this.greeting!);
        return;
      }
      case 'ready':
        this.events.message(m);
        return;
      case 'closed':
        return;
    }
  }
}
