import type { Socket } from 'node:net';
import type { Logger } from '../log.ts';
import { SocketWriter } from '../net/socket-writer.ts';
import type { Greeting } from '../qmp/greeting.ts';
import { MonitorSession, type ClientSide } from '../qmp/monitor-session.ts';
import { errorReply, wireBuffer, wireLength, type WireData } from '../qmp/wire.ts';
import { assertNever, present } from '../util/assert.ts';
import type { Access } from './access.ts';
import type { ClientConnectionOptions, ClientState, CommandRoute } from './client-route.ts';
import type { DisconnectReason } from './disconnect.ts';
import { EarlyInput } from './early-input.ts';
import type { Endpoint } from './endpoint.ts';
import type { CertificateNames } from './identity.ts';
import { BYTES_PER_TURN, MESSAGES_PER_TURN, REPLY_BYTES_PER_TURN } from './input-budget.ts';

/**
 * A client connection: the socket edge of a MonitorSession. It writes
 * through one writer, batched per tick; reads a bounded amount per turn;
 * stops reading while the client holds as much as it may (pending
 * requests, queued input); disconnects a client that does not read what it
 * is sent; and makes sure a connection it ends is gone within a bounded
 * time, whatever the peer does.
 */
export class ClientConnection implements ClientSide {
  state: ClientState = 'waiting';
  session: MonitorSession | undefined;
  /** Where its commands go, once greeted. */
  route: CommandRoute | undefined;
  readonly connectedAt = new Date();
  reason: DisconnectReason = 'closed';
  /** Extra words for the log line (an amount, an error). */
  detail: string | undefined;
  readonly endpoint: Endpoint;
  /** What it may do and receive (a reload may give it another, then `limitsChanged`); its certificate, verified, on TLS endpoints. */
  access: Access;
  readonly certificate: CertificateNames | undefined;
  readonly number: number;
  readonly peer: string;
  private readonly socket: Socket;
  private readonly log: Logger;
  private readonly out: SocketWriter;
  /** The one timer of the phase it is in: greeting, negotiation, or linger. */
  private timer: NodeJS.Timeout | undefined;
  private reading = false;
  private readonly early = new EarlyInput();
  /** Input read and not yet given to the session, and how far it has been. */
  private input: Buffer | undefined;
  private inputAt = 0;
  private turnScheduled = false;
  /** The client half-closed; acted on once its input is all read. */
  private inputEnded = false;

  constructor(private readonly options: ClientConnectionOptions) {
    const { socket } = options;
    this.socket = socket;
    this.endpoint = options.endpoint;
    this.access = options.access;
    this.certificate = options.certificate;
    this.number = options.number;
    this.peer = options.peer;
    this.log = options.log;
    this.out = new SocketWriter(socket, options.flusher);
    socket.setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('error', (err) => {
      if (this.state === 'closing' || this.state === 'closed') return;
      this.reason = 'error';
      this.detail = err.message;
    });
    socket.on('close', () => this.onClose());
  }

  /** Closes the client if QEMU is not there to greet it within `ms` (0: wait for ever). */
  awaitGreeting(ms: number): void {
    if (ms > 0) this.arm(ms, () => this.destroy('greeting-timeout'));
    this.updateReading();
  }

  /** QEMU is there: greet the client as QEMU would and start reading; its commands go to `route`. */
  greet(greeting: Greeting, route: CommandRoute): void {
    if (this.state !== 'waiting') return;
    this.state = 'open';
    clearTimeout(this.timer);
    this.route = route;
    const limits = this.access.limits;
    this.session = new MonitorSession({
      toClient: this,
      toQemu: route,
      offered: greeting.capabilities,
      limits,
      maxPending: limits.maxPendingRequests,
      ...(this.log.tracing && { trace: (message: string) => this.log.trace('from-client', this.whose, message) }),
    });
    // Alone in its write: some clients expect the greeting alone in their first read.
    this.write(greeting.bytes);
    this.out.flush();
    const timeout = this.endpoint.options.negotiationTimeoutMs;
    if (timeout > 0) {
      this.arm(timeout, () => {
        this.write(errorReply(undefined, 'GenericError', `Capabilities negotiation not done within ${timeout} ms; closing`));
        this.end('negotiation-timeout');
      });
    }
    // Input held while waiting, only now: it may negotiate, which disarms the timeout.
    this.input = this.early.take();
    this.inputAt = 0;
    if (this.input) this.consume();
    else this.afterInput();
  }

  /** Refuses the connection with a QMP error. */
  refuse(reason: DisconnectReason, desc: string): void {
    this.write(errorReply(undefined, 'GenericError', desc));
    this.end(reason);
  }

  /** Reads no more input (qmp-mux is stopping); replies owed still go out. */
  stopReading(): void {
    if (this.state !== 'open') return;
    this.state = 'draining';
    this.input = undefined;
    this.updateReading();
  }

  /**
   * Closes the connection after everything written so far. A peer that
   * neither reads nor closes is cut off after the linger time.
   */
  end(reason: DisconnectReason): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.reason = reason;
    this.state = 'closing';
    this.input = undefined;
    this.leave();
    this.out.flush();
    this.socket.end();
    this.arm(this.options.lingerMs, () => this.socket.destroy());
    // Input is read and dropped from now on, so that the peer's close is seen.
    this.updateReading();
  }

  /** Closes a connection that is ending at once, for the reason it was ended. */
  cutOff(): void {
    if (this.state === 'closing') this.socket.destroy();
  }

  /** Closes the connection at once. */
  destroy(reason: DisconnectReason, detail?: string): void {
    if (this.state === 'closed' || this.socket.destroyed) return;
    this.reason = reason;
    this.detail = detail;
    this.state = 'closing';
    this.leave();
    this.socket.destroy();
  }

  /** Bytes written to the client and not yet taken by it. */
  get bytesQueued(): number {
    return this.socket.writableLength + this.out.waiting;
  }

  /** Its access's limits changed (a reload): they hold from its next byte on. */
  limitsChanged(): void {
    const { limits } = this.access;
    this.session?.setLimits(limits, limits.maxPendingRequests);
    // A higher bound may let it be read again.
    this.scheduleTurn();
  }

  /** Commands it queued have gone on: it may be read again (on a later turn, never inside the dispatcher's work). */
  room(): void {
    this.scheduleTurn();
  }

  /** QEMU's replies stopped matching the commands in flight, one of them its own: its replies can no longer be told apart. */
  repliesLost(): void {
    this.end('reply-mismatch');
  }

  // ClientSide

  write(data: WireData): void {
    if (this.state === 'closed' || this.socket.destroyed) return;
    const length = wireLength(data);
    // Checked before the write, so what a client leaves unread never takes more than its limit.
    const buffered = this.bytesQueued + length;
    if (buffered > this.access.limits.maxOutputBuffer) {
      this.destroy('slow-reader', `${buffered} bytes buffered`);
      return;
    }
    this.out.write(data);
    this.options.counters.bytesOut(length);
    if (this.log.tracing) for (const message of messagesIn(data)) this.log.trace('to-client', this.whose, message);
  }

  negotiated(): void {
    clearTimeout(this.timer);
    this.options.onNegotiated();
  }

  finished(): void {
    this.end('finished');
  }

  pendingBelowLimit(): void {
    if (this.input) this.consume();
    else this.updateReading();
  }

  // Socket events

  /** Its endpoint and itself, for trace lines. */
  private get whose(): { endpoint: string; client: string } {
    return { endpoint: this.endpoint.name, client: this.peer };
  }

  private onData(chunk: Buffer): void {
    this.options.counters.bytesIn(chunk.length);
    switch (this.state) {
      case 'waiting':
        this.early.push(chunk);
        this.updateReading();
        return;
      case 'open':
        this.input = chunk;
        this.inputAt = 0;
        this.consume();
        return;
      case 'draining':
      case 'closing':
      case 'closed':
        // Input is dropped.
        return;
      default:
        assertNever(this.state);
    }
  }

  private onEnd(): void {
    this.inputEnded = true;
    if (this.state === 'waiting' && this.early.bytes === 0) {
      // With nothing sent, nothing is owed: the client gave up waiting.
      this.destroy('closed');
      return;
    }
    if (this.state === 'open' && !this.input) this.afterInput();
  }

  private onClose(): void {
    clearTimeout(this.timer);
    this.state = 'closed';
    this.input = undefined;
    this.leave();
    this.options.onClosed();
  }

  /** The session ends and what the client queued is dropped. */
  private leave(): void {
    this.session?.close();
    this.route?.close();
  }

  /**
   * Gives the session input, at most a turn's worth (MESSAGES_PER_TURN,
   * BYTES_PER_TURN, REPLY_BYTES_PER_TURN); the rest waits for a later turn
   * of the event loop, the socket unread meanwhile.
   */
  private consume(): void {
    const session = present(this.session, 'the session of an open client');
    const input = present(this.input, 'input to consume');
    if (this.mayTakeInput()) this.inputAt += session.receive(input.subarray(this.inputAt, this.inputAt + BYTES_PER_TURN), MESSAGES_PER_TURN, REPLY_BYTES_PER_TURN);
    if (this.inputAt >= input.length || this.state !== 'open') {
      this.input = undefined;
      this.afterInput();
      return;
    }
    if (this.mayTakeInput()) this.scheduleTurn();
    this.updateReading();
  }

  /** Takes more input on a later turn of the event loop, or reads the socket if none is held. */
  private scheduleTurn(): void {
    if (this.turnScheduled) return;
    this.turnScheduled = true;
    setImmediate(() => {
      this.turnScheduled = false;
      if (this.state !== 'open') return;
      if (this.input) this.consume();
      else this.updateReading();
    });
  }

  /**
   * Whether the session may be given more input now: not while the client
   * has as many requests pending as it may (the session says when that
   * changes), nor while it holds as much input as it may (its route says).
   */
  private mayTakeInput(): boolean {
    const session = present(this.session, 'the session of an open client');
    if (session.atPendingLimit) return false;
    return !present(this.route, 'the route of an open client').holdsTooMuch(session.heldBytes);
  }

  /** All input read so far is the session's: go on reading, or finish if the client half-closed. */
  private afterInput(): void {
    if (this.inputEnded && this.state === 'open') {
      this.state = 'draining';
      present(this.session, 'the session of an open client').endInput();
    }
    this.updateReading();
  }

  /** Reads from the socket exactly when the state says to. */
  private updateReading(): void {
    let read: boolean;
    switch (this.state) {
      case 'waiting':
        read = this.early.hasRoom;
        break;
      case 'open':
        read = this.input === undefined && this.mayTakeInput();
        break;
      case 'closing':
        read = true;
        break;
      case 'draining':
      case 'closed':
        read = false;
        break;
      default:
        assertNever(this.state);
    }
    if (read === this.reading) return;
    this.reading = read;
    if (read) this.socket.resume();
    else this.socket.pause();
  }

  private arm(ms: number, then: () => void): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(then, ms);
    this.timer.unref();
  }
}

/** The messages in bytes written to a client: one per line (events may go several to a write). */
const messagesIn = (data: WireData): string[] => (typeof data === 'string' ? data : wireBuffer(data).toString('utf8')).split('\r\n').filter((line) => line !== '');
