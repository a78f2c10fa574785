import type { Socket } from 'node:net';
import type { Logger } from '../log.ts';
import { TickWriter } from '../net/tick-writer.ts';
import { errorResponse } from '../qmp/messages.ts';
import { Session, type Command, type SessionHost } from '../qmp/session.ts';
import type { Greeting } from '../upstream/connection.ts';
import type { Endpoint } from './endpoint.ts';

/** What a client needs from the proxy. */
export interface ClientOwner {
  route(client: Client, command: Command): string | Command;
  commandsQueued(session: Session): void;
  sendOob(session: Session, command: Command): void;
  negotiated(client: Client): void;
  gone(client: Client): void;
}

export type ClientState = 'waiting' | 'open' | 'ending' | 'closed';

/** Why a client connection ended; counted per reason. */
export const DISCONNECT_REASONS = {
  closed: 'closed by the client',
  finished: 'finished after closing its input',
  'slow-reader': 'not reading its output',
  'negotiation-timeout': 'did not negotiate in time',
  'greeting-timeout': 'no QEMU to greet it in time',
  'too-many-clients': 'too many clients on the endpoint',
  'qemu-gone': 'QEMU disconnected',
  stopping: 'qmp-mux stopping',
  error: 'socket error',
} as const;
export type DisconnectReason = keyof typeof DISCONNECT_REASONS;

/** Input held for a client still waiting for its greeting; beyond it the socket is not read. */
const EARLY_INPUT_CAP = 64 * 1024;

/**
 * A client connection: the socket edge of a Session. It batches writes per
 * tick, stops reading while the client has too many requests pending, and
 * disconnects a client that does not read what it is sent.
 */
export class Client implements SessionHost {
  state: ClientState = 'waiting';
  session: Session | undefined;
  readonly connectedAt = new Date();
  reason: DisconnectReason = 'closed';
  /** Extra words for the log line (an amount, an error). */
  detail: string | undefined;
  private readonly out: TickWriter;
  private timer: NodeJS.Timeout | undefined;
  /**
   * What a client sent before its greeting (a one-liner piped into socat
   * writes at once and half-closes). It is read, not left in the socket, so
   * that a client that gives up waiting is noticed at once.
   */
  private early: Buffer[] = [];
  private earlyBytes = 0;
  private earlyEnd = false;

  constructor(
    readonly socket: Socket,
    readonly endpoint: Endpoint,
    /** Peer description, for logs. */
    readonly peer: string,
    /** Unique number, for the client list. */
    readonly number: number,
    private readonly owner: ClientOwner,
    private readonly log: Logger,
  ) {
    socket.setNoDelay?.(true);
    socket.pause();
    this.out = new TickWriter(socket);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('error', (err) => {
      if (this.state === 'closed') return;
      this.reason = 'error';
      this.detail = err.message;
    });
    socket.on('close', () => this.onClose());
  }

  /** Closes the client if QEMU is not there to greet it within `ms` (0: wait for ever). */
  awaitGreeting(ms: number): void {
    this.socket.resume();
    if (ms > 0) this.arm(ms, () => this.destroy('greeting-timeout'));
  }

  /** QEMU is there: greet the client as QEMU would and start reading. */
  greet(greeting: Greeting): void {
    if (this.state !== 'waiting') return;
    this.state = 'open';
    clearTimeout(this.timer);
    const limits = this.endpoint.options.limits;
    this.session = new Session(this, { offered: greeting.capabilities, limits, maxPending: limits.maxPendingRequests });
    this.socket.write(greeting.bytes);
    const timeout = this.endpoint.options.negotiationTimeoutMs;
    if (timeout > 0) {
      this.arm(timeout, () => {
        this.write(errorResponse(undefined, 'GenericError', `Capabilities negotiation not done within ${timeout} ms; closing`));
        this.end('negotiation-timeout');
      });
    }
    // Input held while waiting, only now: it may negotiate, which disarms the timeout.
    const early = this.early;
    this.early = [];
    for (const chunk of early) this.onData(chunk);
    if (this.earlyEnd) this.onEnd();
    else if (!this.session.atPendingLimit) this.socket.resume();
  }

  /** Refuses the connection with a QMP error. */
  refuse(reason: DisconnectReason, desc: string): void {
    this.socket.write(errorResponse(undefined, 'GenericError', desc));
    this.end(reason);
  }

  /** Stops reading input (qmp-mux is stopping); pending replies still go out. */
  stopReading(): void {
    this.socket.pause();
    if (this.state === 'open') this.state = 'ending';
  }

  /** Closes the connection after everything written so far. */
  end(reason: DisconnectReason): void {
    if (this.state === 'closed') return;
    this.reason = reason;
    this.session?.close();
    this.state = 'closed';
    clearTimeout(this.timer);
    this.out.flush();
    this.socket.end();
  }

  /** Closes the connection at once. */
  destroy(reason: DisconnectReason, detail?: string): void {
    if (this.socket.destroyed) return;
    this.reason = reason;
    this.detail = detail;
    this.session?.close();
    this.state = 'closed';
    this.socket.destroy();
  }

  /** Bytes written to the client and not yet taken by it. */
  get bytesQueued(): number {
    return this.socket.writableLength + this.out.waiting;
  }

  write(data: string | Buffer): void {
    if (this.socket.destroyed) return;
    this.out.write(data);
    if (this.log.tracing) this.log.trace('to-client', this.peer, data);
    const buffered = this.bytesQueued;
    if (buffered > this.endpoint.options.limits.maxOutputBuffer) this.destroy('slow-reader', `${buffered} bytes buffered`);
  }

  route(_session: Session, command: Command): string | Command {
    return this.owner.route(this, command);
  }

  commandsQueued(session: Session): void {
    this.owner.commandsQueued(session);
  }

  sendOob(session: Session, command: Command): void {
    this.owner.sendOob(session, command);
  }

  negotiated(): void {
    clearTimeout(this.timer);
    this.owner.negotiated(this);
  }

  pendingBelowLimit(): void {
    if (this.state === 'open') this.socket.resume();
  }

  finished(): void {
    this.end('finished');
  }

  private arm(ms: number, then: () => void): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(then, ms);
    this.timer.unref();
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'waiting') {
      this.early.push(chunk);
      this.earlyBytes += chunk.length;
      if (this.earlyBytes >= EARLY_INPUT_CAP) this.socket.pause();
      return;
    }
    const session = this.session;
    if (!session || this.state !== 'open') return;
    if (this.log.tracing) this.log.trace('from-client', this.peer, chunk);
    session.receive(chunk);
    if (session.atPendingLimit) this.socket.pause();
  }

  private onEnd(): void {
    if ((this.state === 'open' || this.state === 'ending') && this.session) {
      this.state = 'ending';
      this.session.endInput();
    } else if (this.state === 'waiting') {
      // With nothing sent, nothing is owed: the client gave up waiting.
      if (this.earlyBytes === 0) this.destroy('closed');
      else this.earlyEnd = true;
    }
  }

  private onClose(): void {
    clearTimeout(this.timer);
    this.session?.close();
    this.state = 'closed';
    this.owner.gone(this);
  }
}
