import { JsonStreamer, QEMU_JSON_LIMITS, type Incoming, type JsonLimits } from '../json/streamer.ts';
import type { JsonObject } from '../json/value.ts';
import { writeCompact } from '../json/writer.ts';
import { FifoQueue } from '../util/fifo.ts';
import { judgeRequest, type Request } from './request.ts';
import { assertNever } from '../util/assert.ts';
import { errorReply, negotiatedReply, wireLength, type WireData } from './wire.ts';

/** A valid command from a client, judged as QEMU judges it. */
export interface ClientCommand {
  readonly name: string;
  readonly args: JsonObject | undefined;
  /** The client's id as QEMU would echo it; undefined when it sent none. */
  readonly idText: string | undefined;
  /** Sent as `exec-oob`: its reply may overtake others. */
  readonly oob: boolean;
}

/** Where the reply to one command goes, once there is one. */
export interface ReplySlot {
  /** The complete reply: the client's id in place, line end included. */
  fill(reply: WireData): void;
}

/** What a session hands on toward QEMU. */
export interface QemuSide {
  /** A valid command, to be answered through `reply`, now or later. */
  command(command: ClientCommand, reply: ReplySlot): void;
}

/** What a session hands on toward its client. */
export interface ClientSide {
  /** Bytes for the client, in order. */
  write(data: WireData): void;
  /** Capabilities negotiation succeeded: from now on the session takes events (`MonitorSession.event`). */
  negotiated(): void;
  /** The client half-closed and every reply it is owed has been written. */
  finished(): void;
  /** Pending requests dropped below `maxPending` after reaching it. */
  pendingBelowLimit(): void;
}

export type SessionState = 'negotiating' | 'command' | 'closed';

export interface SessionOptions {
  toClient: ClientSide;
  toQemu: QemuSide;
  /** Capabilities the greeting offered this client. */
  offered: readonly string[];
  /** Limits on one input message (default QEMU's). */
  limits?: Readonly<JsonLimits>;
  /** Unanswered requests at which the client should stop being read (default none). */
  maxPending?: number;
  /** Hears of each message read (`--trace`): its compact JSON, or why it could not be read. */
  trace?: (message: string) => void;
}

/**
 * One client's view of the monitor, as QEMU keeps it per connection: its own
 * JSON parser, its own negotiation state, and replies in the order of its
 * requests (out-of-band ones excepted). Pure: fed bytes, it hands valid
 * commands toward QEMU and replies toward the client.
 */
export class MonitorSession {
  state: SessionState = 'negotiating';
  /** The client enabled `oob`. */
  oob = false;
  /** Error replies this session produced itself. */
  errors = 0;
  private readonly streamer: JsonStreamer;
  private readonly toClient: ClientSide;
  private readonly toQemu: QemuSide;
  private readonly offered: readonly string[];
  private maxPending: number;
  private readonly trace: ((message: string) => void) | undefined;
  /** In-band requests not yet answered to the client, oldest first. */
  private readonly order = new FifoQueue<OrderedSlot>();
  /** Out-of-band ones: they overtake in-band replies, never each other (QEMU runs them one at a time, in the order read). */
  private readonly oobOrder = new FifoQueue<OrderedSlot>();
  private inputEnded = false;
  /** While `receive` reads: bytes of replies its messages have had so far, and how many end it. */
  private replyBytes = 0;
  private maxReplyBytes = Infinity;

  constructor(options: SessionOptions) {
    this.toClient = options.toClient;
    this.toQemu = options.toQemu;
    this.offered = options.offered;
    this.maxPending = options.maxPending ?? Infinity;
    this.trace = options.trace;
    this.streamer = new JsonStreamer((m) => this.onMessage(m), options.limits ?? QEMU_JSON_LIMITS);
  }

  /**
   * Bytes from the client, read up to `maxMessages` messages, or up to the
   * message whose reply, written at once, takes what its messages' replies
   * came to past `maxReplyBytes` (a reply qmp-mux makes itself can be
   * megabytes, and making it is work); returns how many bytes were read
   * (the rest is for a later call).
   */
  receive(chunk: Uint8Array, maxMessages = Infinity, maxReplyBytes = Infinity): number {
    if (this.state === 'closed') return chunk.length;
    this.replyBytes = 0;
    this.maxReplyBytes = maxReplyBytes;
    try {
      return this.streamer.feed(chunk, maxMessages);
    } finally {
      this.maxReplyBytes = Infinity;
    }
  }

  /** The client will send nothing more; finish its business, then report `finished`. */
  endInput(): void {
    this.inputEnded = true;
    this.checkFinished();
  }

  /** The connection is gone: nothing more is written. */
  close(): void {
    this.state = 'closed';
  }

  /** An event from QEMU; only negotiated clients see events, as with QEMU. */
  event(bytes: Buffer): void {
    if (this.state === 'command') this.toClient.write(bytes);
  }

  /** New limits on its input and pending requests (a reload changed them), from the next byte on. */
  setLimits(limits: Readonly<JsonLimits>, maxPending: number): void {
    const wasFull = this.atPendingLimit;
    this.streamer.setLimits(limits);
    this.maxPending = maxPending;
    if (wasFull && !this.atPendingLimit) this.toClient.pendingBelowLimit();
  }

  /** Requests not yet answered, counting out-of-band ones. */
  get pending(): number {
    return this.order.length + this.oobOrder.length;
  }

  /** Bytes held for a message the client has not finished sending. */
  get heldBytes(): number {
    return this.streamer.heldBytes;
  }

  /** The client has as many requests pending as it may: stop reading it. */
  get atPendingLimit(): boolean {
    return this.pending >= this.maxPending;
  }

  private onMessage(message: Incoming): void {
    if (this.state === 'closed') return;
    this.trace?.(message.error !== undefined ? `(unreadable input: ${message.error})` : writeCompact(message.value).text);
    if (message.error !== undefined) {
      this.errors++;
      this.answer(errorReply(undefined, 'GenericError', message.error), false);
      return;
    }
    this.handle(judgeRequest(message.value, { negotiated: this.state === 'command', oob: this.oob }));
  }

  private handle(request: Request): void {
    switch (request.kind) {
      case 'error':
        this.errors++;
        this.answer(errorReply(request.idText, request.errorClass, request.desc), request.oob);
        return;
      case 'negotiate': {
        const missing = request.enable.filter((cap) => !this.offered.includes(cap));
        if (missing.length > 0) {
          this.errors++;
          this.answer(errorReply(request.idText, 'GenericError', `Capability ${missing.join(', ')} not available`), false);
          return;
        }
        this.oob = request.enable.includes('oob');
        this.state = 'command';
        this.answer(negotiatedReply(request.idText), false);
        this.toClient.negotiated();
        return;
      }
      case 'command': {
        const { name, args, idText, oob } = request;
        const slot = new OrderedSlot(this, oob ? this.oobOrder : this.order);
        slot.queue.push(slot);
        this.toQemu.command({ name, args, idText, oob }, slot);
        return;
      }
      default:
        assertNever(request);
    }
  }

  /** A reply the session produced itself; it waits for the replies owed before it, in-band or out-of-band as its request was. */
  private answer(data: string, oob: boolean): void {
    const queue = oob ? this.oobOrder : this.order;
    if (queue.length === 0) {
      this.toClient.write(data);
      return;
    }
    const slot = new OrderedSlot(this, queue);
    slot.data = data;
    queue.push(slot);
  }

  /** @internal A reply was made for one of its requests: counted only while `receive` reads with a budget. */
  replied(reply: WireData): void {
    if (this.maxReplyBytes === Infinity) return;
    this.replyBytes += wireLength(reply);
    if (this.replyBytes > this.maxReplyBytes) this.streamer.stop();
  }

  /** @internal A slot of `queue` was filled: write what is now at its head, in order. */
  flushInOrder(queue: FifoQueue<OrderedSlot>): void {
    if (this.state === 'closed') return;
    const wasFull = this.atPendingLimit;
    for (let head = queue.peek(); head?.data !== undefined; head = queue.peek()) {
      this.toClient.write(head.data);
      queue.shift();
    }
    this.afterAnswer(wasFull);
  }

  private afterAnswer(wasFull: boolean): void {
    if (wasFull && !this.atPendingLimit) this.toClient.pendingBelowLimit();
    this.checkFinished();
  }

  private checkFinished(): void {
    if (!this.inputEnded || this.state === 'closed' || this.pending > 0) return;
    this.toClient.finished();
  }
}

class OrderedSlot implements ReplySlot {
  data: WireData | undefined;

  constructor(
    private readonly session: MonitorSession,
    readonly queue: FifoQueue<OrderedSlot>,
  ) {}

  fill(reply: WireData): void {
    this.data = reply;
    this.session.replied(reply);
    this.session.flushInOrder(this.queue);
  }
}
