import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { ConnectionError, ProtocolError, QmpMuxError, TimeoutError } from '../errors.ts';
import { isObject, JsonNumber, type JsonObject, type JsonValue } from '../json/value.ts';
import { LOCK, UNLOCK, type LockMode } from '../qmp/extensions.ts';
import { checkTimerMs } from '../util/timer.ts';
import { formatServerAddress, parseClientAddress, type ServerAddress } from './address.ts';
import type { ExecuteArguments, LockOptions, ReturnOf } from './commands.ts';
import { describeSocketError, openSocket } from './server-socket.ts';
import type { QmpTlsOptions } from './tls-options.ts';
import { EventStream } from './event-stream.ts';
import { DEFAULT_MAX_MESSAGE, QmpReader } from './reader.ts';
import { ClientSession, type QmpGreeting } from './client-session.ts';
import { fromJson, toJson, type QmpInput, type QmpObject } from './values.ts';

export interface QmpClientOptions {
  /** Milliseconds to connect and be greeted (qmp-mux holds the greeting while QEMU is away); 0 waits for ever. Default 10000; at most 2147483647 (else a RangeError). */
  connectTimeout?: number;
  /** Longest message accepted from the server, in bytes. Default 64 MiB. */
  maxMessageSize?: number;
  /**
   * Aborting closes the connection, connecting or not: what is waiting
   * rejects with the signal's reason if that is a QmpMuxError (e.g. a
   * TimeoutError), else with a ConnectionError `ADDRESS: aborted` (see
   * `abortError`).
   */
  signal?: AbortSignal;
  /** With a `tls:` address: the certificates (file paths) to present and to trust. */
  tls?: QmpTlsOptions;
}

/** An event from the server. */
export interface QmpEvent {
  event: string;
  /** The event's data; `{}` when it has none. */
  data: QmpObject;
  /** When QEMU emitted it; both -1 if QEMU could not read the clock. */
  timestamp: { seconds: number; microseconds: number };
  /** The event as received, numbers with their exact digits, members in QEMU's order. */
  json: JsonObject;
}

/** Arguments of a command: members left `undefined` are not sent. */
export type QmpArguments = { readonly [name: string]: QmpInput | undefined };

export interface QmpClientEvents {
  event: [event: QmpEvent];
  /** A reply to none of this client's commands (dropped). */
  stray: [message: JsonObject];
  /** The connection ended: `undefined` after `close()`, else why. */
  close: [error: QmpMuxError | undefined];
}

/**
 * What only qmp-mux's own clients ask of a connection (the shell's -N); not
 * part of the library.
 * @internal
 */
export interface ConnectionInternals {
  /** False: no greeting is awaited and no negotiation made (see `ClientSession`); `greeting` stays unset until one comes. */
  negotiate: boolean;
  /** A greeting that came on a connection that does not negotiate. */
  greeted?: (greeting: QmpGreeting) => void;
  /** The socket is connected (over TLS: secure); greeting and negotiation may still be to come. */
  connected?: () => void;
}

const DEFAULT_CONNECT_TIMEOUT = 10_000;
const DEFAULT_MAX_BUFFERED_EVENTS = 10_000;

/**
 * A QMP client over a unix or TCP socket, for QEMU itself or qmp-mux.
 * `connect` resolves once the server has greeted and negotiation is done.
 * Commands may be sent concurrently; each resolves with its `return` value
 * or rejects with a QmpError that carries the QMP error class. When the
 * connection ends, commands still waiting reject with a ConnectionError.
 * There is no automatic reconnection: a new QEMU greets anew, so connect
 * again (see `connectRetrying`).
 */
export class QmpClient extends EventEmitter<QmpClientEvents> {
  /** The server's greeting. */
  greeting!: QmpGreeting;
  /** Resolves when the connection has ended: `undefined` after `close()`, else the error that ended it. */
  readonly done: Promise<QmpMuxError | undefined>;
  private readonly session: ClientSession;
  private readonly reader: QmpReader;
  private readonly streams = new Set<EventStream<QmpEvent>>();
  private readonly opened: Promise<QmpClient>;
  private settleOpened: { resolve(c: QmpClient): void; reject(e: QmpMuxError): void } | undefined;
  private finish!: (error: QmpMuxError | undefined) => void;
  private timer: NodeJS.Timeout | undefined;
  private ending: QmpMuxError | undefined;
  /**
   * Events that come before `connect` has resolved (with the greeting, or in
   * the same read as the end of negotiation): given out once the callbacks
   * of `connect` have run, so listeners added right after it hear them. No
   * reply can come in between: the next read happens after that.
   */
  private early: JsonObject[] | undefined = [];
  private closedByUs = false;

  private constructor(
    private readonly socket: Socket,
    /** Where this client is connected. */
    readonly address: ServerAddress,
    options: QmpClientOptions,
    internals: ConnectionInternals,
  ) {
    super();
    this.done = new Promise((resolve) => (this.finish = resolve));
    this.opened = new Promise((resolve, reject) => (this.settleOpened = { resolve, reject }));
    this.session = new ClientSession(
      {
        send: (text) => this.socket.write(text),
        ready: (greeting) => this.ready(greeting),
        event: (message) => this.onEvent(message),
        stray: (message) => this.emit('stray', message),
        failed: (error) => this.fail(error),
        greeted: (greeting) => {
          this.greeting = greeting;
          internals.greeted?.(greeting);
        },
      },
      internals.negotiate,
    );
    const connectEvent = address.type === 'tls' ? 'secureConnect' : 'connect';
    // Without negotiation, commands may go once connected (over TLS: once secure).
    if (!internals.negotiate) socket.once(connectEvent, () => this.settleOpen());
    if (internals.connected) socket.once(connectEvent, internals.connected);
    this.reader = new QmpReader(
      (message) => this.session.receive(message),
      (desc) => this.fail(new ProtocolError(`${this.where()}: unreadable message from the server: ${desc}`)),
      options.maxMessageSize ?? DEFAULT_MAX_MESSAGE,
    );
    const timeout = options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT;
    if (timeout > 0) {
      this.timer = setTimeout(() => this.fail(new TimeoutError(`${this.where()}: no QMP greeting within ${timeout} ms`)), timeout);
    }
    const signal = options.signal;
    if (signal) {
      const abort = (): void => this.fail(abortError(signal, address));
      if (signal.aborted) queueMicrotask(abort);
      else {
        signal.addEventListener('abort', abort, { once: true });
        void this.done.then(() => signal.removeEventListener('abort', abort));
      }
    }
    socket.on('data', (chunk: Buffer) => this.reader.feed(chunk));
    socket.on('end', () => this.fail(new ConnectionError(`${this.where()}: the server closed the connection${this.refusedCertificate()}`)));
    socket.on('error', (e: NodeJS.ErrnoException) => {
      const closed = e.code === 'ECONNRESET' || e.code === 'EPIPE';
      this.fail(new ConnectionError(`${this.where()}: ${describeSocketError(e, address)}${closed ? this.refusedCertificate() : ''}`));
    });
    socket.on('close', () => this.closed());
  }

  /**
   * Connects, reads the greeting and negotiates. Rejects with
   * ConnectionError, TimeoutError or ProtocolError; with a TlsError naming
   * the file when a TLS file cannot be used; at once, with an AddressError
   * for an address that does not parse, or a RangeError when
   * `connectTimeout` is not from 0 to 2147483647.
   */
  static async connect(address: string | ServerAddress, options: QmpClientOptions = {}): Promise<QmpClient> {
    return QmpClient.open(typeof address === 'string' ? parseClientAddress(address) : address, options, { negotiate: true });
  }

  /**
   * `connect`, with what only qmp-mux's own clients ask (see `ConnectionInternals`).
   * @internal
   */
  static async open(to: ServerAddress, options: QmpClientOptions, internals: ConnectionInternals): Promise<QmpClient> {
    checkTimerMs(options.connectTimeout, 'connectTimeout');
    return new QmpClient(openSocket(to, options.tls), to, options, internals).opened;
  }

  /**
   * Runs a command with library values as arguments; resolves with its
   * return value (see `QmpValue` for numbers). Commands listed in
   * `QmpCommands` have their arguments checked and their result typed
   * (`StatusInfo` for `query-status`); any other resolves with a `QmpValue`.
   */
  async execute<C extends string>(command: C, ...[args]: ExecuteArguments<C>): Promise<ReturnOf<C>> {
    const json = args === undefined ? undefined : (toJson(args as QmpInput, 'arguments') as JsonObject);
    // The types describe QEMU's schema; the values are what the server sent.
    return fromJson(await this.executeJson(command, json)) as ReturnOf<C>;
  }

  /** Runs a command with parsed JSON arguments; resolves with the return value exactly as received. */
  executeJson(command: string, args?: JsonObject): Promise<JsonValue> {
    return this.session.execute(command, args);
  }

  /**
   * Events from now on, as an async iterator. It ends when the connection
   * does (with the ConnectionError if the connection was lost), or when the
   * loop leaves it; a reader more than `maxBuffered` events behind (default
   * 10000) gets an EventOverflowError.
   */
  events(options: { maxBuffered?: number } = {}): AsyncIterableIterator<QmpEvent> {
    const stream: EventStream<QmpEvent> = new EventStream(options.maxBuffered ?? DEFAULT_MAX_BUFFERED_EVENTS, () => this.streams.delete(stream));
    if (this.ending || this.closedByUs) stream.end(this.ending);
    else this.streams.add(stream);
    return stream;
  }

  /**
   * Takes qmp-mux's lock (`write`: other clients may still run what the
   * read-only preset allows; `exclusive`: nothing that reaches QEMU).
   * Rejects with the QmpError qmp-mux answers when another client holds it
   * (past `waitMs`), or CommandNotFound from a server that is not qmp-mux.
   */
  async lock(mode: LockMode, options: LockOptions = {}): Promise<void> {
    await this.execute(LOCK, { mode, 'wait-ms': options.waitMs, 'lease-ms': options.leaseMs, reason: options.reason });
  }

  /** Ends the lock this client holds; rejects if it holds none (its lease ran out, say: the error says so). */
  async unlock(): Promise<void> {
    await this.execute(UNLOCK);
  }

  /**
   * Runs `fn` under qmp-mux's lock, released whatever happens. When `fn`
   * throws, its error is what this rejects with (the lock is released, or
   * went with the connection). When `fn` succeeds but the lock had ended
   * meanwhile (its lease ran out), this rejects with the unlock's QmpError:
   * some of what `fn` did may have run unprotected. Commands this client
   * sends meanwhile from elsewhere run under the lock too.
   */
  async withLock<T>(mode: LockMode, fn: (client: this) => Promise<T> | T, options: LockOptions = {}): Promise<T> {
    await this.lock(mode, options);
    let result: T;
    try {
      result = await fn(this);
    } catch (e) {
      // Without a connection there is no lock left to release.
      await this.unlock().catch(() => undefined);
      throw e;
    }
    await this.unlock();
    return result;
  }

  /** Stops reading from the server (replies and events wait in the socket, then in the server) until `resume()`. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Closes the connection at once; commands still waiting reject with ConnectionError. */
  async close(): Promise<void> {
    if (!this.ending && !this.closedByUs) {
      this.closedByUs = true;
      this.stop(new ConnectionError(`${this.where()}: the client closed the connection`));
      this.socket.destroy();
    }
    await this.done;
  }

  private ready(greeting: QmpGreeting): void {
    this.greeting = greeting;
    this.settleOpen();
  }

  /** Commands may be sent: `connect` resolves. */
  private settleOpen(): void {
    this.clearTimer();
    this.settleOpened?.resolve(this);
    this.settleOpened = undefined;
    setImmediate(() => {
      const early = this.early ?? [];
      this.early = undefined;
      for (const message of early) this.onEvent(message);
    });
  }

  private onEvent(message: JsonObject): void {
    if (this.early) {
      if (this.early.length >= DEFAULT_MAX_BUFFERED_EVENTS) this.fail(new ProtocolError(`${this.where()}: more than ${DEFAULT_MAX_BUFFERED_EVENTS} events before negotiation completed`));
      else this.early.push(message);
      return;
    }
    const event = toEvent(message);
    if (event === undefined) {
      this.emit('stray', message);
      return;
    }
    this.emit('event', event);
    for (const s of this.streams) s.push(event);
  }

  private fail(error: QmpMuxError): void {
    if (this.ending || this.closedByUs) return;
    this.ending = error;
    this.stop(error);
    this.socket.destroy();
  }

  /** Everything waiting on this connection learns that it ends. */
  private stop(error: QmpMuxError): void {
    this.clearTimer();
    this.session.close(error);
    this.settleOpened?.reject(error);
    this.settleOpened = undefined;
    const reason = this.closedByUs ? undefined : error;
    for (const s of [...this.streams]) s.end(reason);
  }

  private closed(): void {
    if (!this.ending && !this.closedByUs) this.fail(new ConnectionError(`${this.where()}: the connection closed`));
    const reason = this.closedByUs ? undefined : this.ending;
    this.emit('close', reason);
    this.finish(reason);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private where(): string {
    return formatServerAddress(this.address);
  }

  /** A TLS server that ends the connection before greeting has most likely refused the client's certificate. */
  private refusedCertificate(): string {
    return this.address.type === 'tls' && this.settleOpened ? ' before greeting (a TLS server does so when it does not accept the client certificate)' : '';
  }
}

/**
 * What an aborted `signal` makes a connection's waiting calls reject with:
 * its reason if that is a QmpMuxError, else a ConnectionError naming the
 * address. One rule for `QmpClient.connect` and `connectRetrying`.
 */
export function abortError(signal: AbortSignal, address: ServerAddress): QmpMuxError {
  return signal.reason instanceof QmpMuxError ? signal.reason : new ConnectionError(`${formatServerAddress(address)}: aborted`);
}

function toEvent(message: JsonObject): QmpEvent | undefined {
  const name = message.get('event');
  if (typeof name !== 'string') return undefined;
  const data = message.get('data');
  const ts = message.get('timestamp');
  const part = (key: string): number => {
    const n = isObject(ts) ? ts.get(key) : undefined;
    return n instanceof JsonNumber ? Number(n.text) : -1;
  };
  return {
    event: name,
    data: isObject(data) ? (fromJson(data) as QmpObject) : {},
    timestamp: { seconds: part('seconds'), microseconds: part('microseconds') },
    json: message,
  };
}
