import type { Socket } from 'node:net';
import type { Logger } from '../log.ts';
import type { Greeting } from '../upstream/connection.ts';
import { Session, type Command, type SessionHost } from '../qmp/session.ts';
import type { LimitOptions } from '../config/options.ts';

/** What a client needs from the proxy. */
export interface ClientOwner {
  commandsQueued(session: Session): void;
  sendOob(session: Session, command: Command): void;
  negotiated(client: Client): void;
  gone(client: Client): void;
}

export type ClientState = 'waiting' | 'open' | 'ending' | 'closed';

/**
 * A client connection: the socket edge of a Session. It batches writes per
 * tick, stops reading while the client has too many requests pending, and
 * disconnects a client that does not read what it is sent.
 */
export class Client implements SessionHost {
  state: ClientState = 'waiting';
  session: Session | undefined;
  readonly connectedAt = Date.now();
  /** Why the connection ended, for the log line. */
  closeReason = 'closed by the client';
  private corked = false;

  constructor(
    readonly socket: Socket,
    /** Endpoint name, for logs. */
    readonly endpoint: string,
    /** Peer description, for logs. */
    readonly peer: string,
    private readonly owner: ClientOwner,
    private readonly limits: LimitOptions,
    private readonly log: Logger,
  ) {
    socket.setNoDelay?.(true);
    socket.pause();
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('error', (err) => this.log.debug('client socket error', { endpoint, client: peer, error: err.message }));
    socket.on('close', () => this.onClose());
  }

  /** QEMU is there: greet the client as QEMU would and start reading. */
  greet(greeting: Greeting): void {
    if (this.state !== 'waiting') return;
    this.state = 'open';
    this.session = new Session(this, {
      offered: greeting.capabilities,
      limits: this.limits,
      maxPending: this.limits.maxPendingRequests,
    });
    this.socket.write(greeting.bytes);
    this.socket.resume();
  }

  /** Closes the connection after everything written so far. */
  end(reason: string): void {
    if (this.state === 'closed') return;
    this.closeReason = reason;
    this.session?.close();
    this.state = 'closed';
    this.socket.end();
  }

  /** Closes the connection at once. */
  destroy(reason: string): void {
    if (this.socket.destroyed) return;
    this.closeReason = reason;
    this.session?.close();
    this.state = 'closed';
    this.socket.destroy();
  }

  write(data: string | Buffer): void {
    if (this.socket.destroyed) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(data);
    if (this.log.tracing) this.log.trace('to-client', this.peer, data);
    if (this.socket.writableLength > this.limits.maxOutputBuffer) {
      this.destroy(`not reading its output (${this.socket.writableLength} bytes buffered)`);
    }
  }

  commandsQueued(session: Session): void {
    this.owner.commandsQueued(session);
  }

  sendOob(session: Session, command: Command): void {
    this.owner.sendOob(session, command);
  }

  negotiated(): void {
    this.owner.negotiated(this);
  }

  /** Room again for requests: read on. */
  pendingBelowLimit(): void {
    if (this.state === 'open') this.socket.resume();
  }

  finished(): void {
    this.end('finished after closing its input');
  }

  private onData(chunk: Buffer): void {
    const session = this.session;
    if (!session || this.state !== 'open') return;
    if (this.log.tracing) this.log.trace('from-client', this.peer, chunk);
    session.receive(chunk);
    if (session.atPendingLimit) this.socket.pause();
  }

  private onEnd(): void {
    if (this.state === 'open' && this.session) {
      this.state = 'ending';
      this.session.endInput();
    } else if (this.state === 'waiting') {
      this.destroy('closed before the greeting');
    }
  }

  private onClose(): void {
    this.session?.close();
    this.state = 'closed';
    this.owner.gone(this);
  }
}
