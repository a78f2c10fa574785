import { JsonStreamer, QEMU_JSON_LIMITS, type Incoming, type JsonLimits } from '../json/streamer.ts';
import type { JsonObject } from '../json/value.ts';
import { FifoQueue } from '../util/fifo.ts';
import { errorResponse, EOL } from './messages.ts';
import { judgeRequest, type Request } from './request.ts';

/** A command on its way to QEMU on behalf of one client. */
export interface Command {
  readonly name: string;
  readonly args: JsonObject | undefined;
  /** The client's id as QEMU would echo it; undefined when it sent none. */
  readonly idText: string | undefined;
  /** Sent as `exec-oob`: bypasses the queue, its reply may overtake others. */
  readonly oob: boolean;
  /** Rewrites QEMU's reply (still carrying qmp-mux's id) before it goes to the client. */
  readonly transform?: (reply: Buffer) => Buffer;
}

/** What a session needs from the world around it. */
export interface SessionHost {
  /** Bytes for the client, in order. */
  write(data: string | Buffer): void;
  /**
   * Decides what becomes of a valid command: the reply the host gives itself
   * (a refusal, or one of qmp-mux's own commands), or the command to send to
   * QEMU.
   */
  route(session: Session, command: Command): string | Command;
  /** The session has in-band commands queued (see `Session.takeCommand`). */
  commandsQueued(session: Session): void;
  /** An out-of-band command, to be sent to QEMU at once. */
  sendOob(session: Session, command: Command): void;
  /** Capabilities negotiation succeeded: the client now receives events. */
  negotiated(session: Session): void;
  /** The client half-closed and every reply it is owed has been written. */
  finished(session: Session): void;
  /** Pending requests dropped below `maxPending` again after reaching it. */
  pendingBelowLimit(session: Session): void;
}

export type SessionState = 'negotiating' | 'command' | 'closed';

export interface SessionOptions {
  /** Capabilities the greeting offered this client. */
  offered: readonly string[];
  limits?: Readonly<JsonLimits>;
  /** Unanswered requests at which the client should stop being read. */
  maxPending?: number;
}

interface Slot {
  data: string | Buffer | undefined;
}

/**
 * One client's view of the monitor, as QEMU keeps it per connection: its own
 * JSON parser, its own negotiation state, and replies in the order of its
 * requests (out-of-band ones excepted). Pure: fed bytes and replies, it
 * talks to the world only through its host.
 */
export class Session {
  state: SessionState = 'negotiating';
  /** The client enabled `oob`. */
  oob = false;
  /** Commands sent (or queued to be sent) to QEMU. */
  commandsSent = 0;
  /** Error replies this session produced itself. */
  errors = 0;
  private readonly streamer: JsonStreamer;
  private readonly offered: readonly string[];
  /** In-band requests not yet answered to the client, oldest first. */
  private readonly order = new FifoQueue<Slot>();
  /** Commands waiting to be sent upstream, oldest first. */
  private queue = new FifoQueue<{ command: Command; slot: Slot }>();
  private oobPending = 0;
  private inputEnded = false;
  private readonly maxPending: number;

  constructor(private readonly host: SessionHost, options: SessionOptions) {
    this.offered = options.offered;
    this.maxPending = options.maxPending ?? Infinity;
    this.streamer = new JsonStreamer((m) => this.onMessage(m), options.limits ?? QEMU_JSON_LIMITS);
  }

  /** Bytes from the client. */
  receive(chunk: Uint8Array): void {
    if (this.state === 'closed') return;
    this.streamer.feed(chunk);
  }

  /** The client will send nothing more; finish its business, then report `finished`. */
  endInput(): void {
    this.inputEnded = true;
    this.checkFinished();
  }

  /** The connection is gone: nothing more is written, queued commands are dropped. */
  close(): void {
    this.state = 'closed';
    this.queue = new FifoQueue();
  }

  /** An event from QEMU; only negotiated clients see events, as with QEMU. */
  event(bytes: Buffer): void {
    if (this.state === 'command') this.host.write(bytes);
  }

  /** Number of commands waiting to go upstream. */
  get queuedCommands(): number {
    return this.queue.length;
  }

  /** Requests not yet answered, counting out-of-band ones. */
  get pending(): number {
    return this.order.length + this.oobPending;
  }

  /** The client has as many requests pending as it may: stop reading it. */
  get atPendingLimit(): boolean {
    return this.pending >= this.maxPending;
  }

  /** Takes the oldest queued in-band command for sending upstream. */
  takeCommand(): { command: Command; reply: (data: string | Buffer) => void } | undefined {
    const entry = this.queue.shift();
    if (!entry) return undefined;
    return { command: entry.command, reply: (data) => this.fill(entry.slot, data) };
  }

  /** The reply to an out-of-band command sent through `sendOob`. */
  oobReply(data: string | Buffer): void {
    const wasFull = this.atPendingLimit;
    this.oobPending--;
    if (this.state !== 'closed') this.host.write(data);
    this.afterAnswer(wasFull);
  }

  private onMessage(message: Incoming): void {
    if (this.state === 'closed') return;
    if (message.error !== undefined) {
      this.errors++;
      this.answer(errorResponse(undefined, 'GenericError', message.error), false);
      return;
    }
    const request = judgeRequest(message.value, { negotiated: this.state === 'command', oob: this.oob });
    this.handle(request);
  }

  private handle(request: Request): void {
    switch (request.kind) {
      case 'error':
        this.errors++;
        this.answer(errorResponse(request.idText, request.errorClass, request.desc), request.oob);
        return;
      case 'negotiate': {
        const missing = request.enable.filter((cap) => !this.offered.includes(cap));
        if (missing.length > 0) {
          this.errors++;
          this.answer(errorResponse(request.idText, 'GenericError', `Capability ${missing.join(', ')} not available`), false);
          return;
        }
        this.oob = request.enable.includes('oob');
        this.state = 'command';
        this.answer(request.idText === undefined ? `{"return": {}}${EOL}` : `{"return": {}, "id": ${request.idText}}${EOL}`, false);
        this.host.negotiated(this);
        return;
      }
      case 'command': {
        const routed = this.host.route(this, { name: request.name, args: request.args, idText: request.idText, oob: request.oob });
        if (typeof routed === 'string') {
          this.answer(routed, request.oob);
          return;
        }
        const command = routed;
        this.commandsSent++;
        if (command.oob) {
          this.oobPending++;
          this.host.sendOob(this, command);
          return;
        }
        const slot: Slot = { data: undefined };
        this.order.push(slot);
        this.queue.push({ command, slot });
        this.host.commandsQueued(this);
        return;
      }
      default:
        assertNever(request);
    }
  }

  /** A reply the session produced itself; in-band ones wait their turn. */
  private answer(data: string, oob: boolean): void {
    if (oob || this.order.length === 0) {
      this.host.write(data);
      return;
    }
    this.order.push({ data });
  }

  private fill(slot: Slot, data: string | Buffer): void {
    slot.data = data;
    if (this.state === 'closed') return;
    const wasFull = this.atPendingLimit;
    for (let head = this.order.peek(); head?.data !== undefined; head = this.order.peek()) {
      this.host.write(head.data);
      this.order.shift();
    }
    this.afterAnswer(wasFull);
  }

  private afterAnswer(wasFull: boolean): void {
    if (this.state === 'closed') return;
    if (wasFull && !this.atPendingLimit) this.host.pendingBelowLimit(this);
    this.checkFinished();
  }

  private checkFinished(): void {
    if (!this.inputEnded || this.state === 'closed') return;
    if (this.order.length > 0 || this.oobPending > 0) return;
    this.host.finished(this);
  }
}

export function assertNever(x: never): never {
  throw new Error(`unexpected value ${JSON.stringify(x)}`);
}
