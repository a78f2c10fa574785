import type { JsonObject } from '../json/value.ts';
import type { ReplySlot } from '../qmp/session.ts';
import type { UpstreamMessage } from '../qmp/upstream-framer.ts';
import { isReaderError, replyForClient, withUpstreamId } from '../qmp/wire.ts';
import { FifoQueue } from '../util/fifo.ts';
import { FairQueue } from './fair-queue.ts';
import { IdPool, ourId } from './ids.ts';

/** Hears of each command QEMU answered (for metrics and the audit log). */
export interface CommandObserver {
  answered(command: UpstreamCommand, reply: UpstreamMessage, qemuSeconds: number): void;
}

/** A command on its way to QEMU. */
export interface UpstreamCommand {
  readonly name: string;
  /** As `encodeCommand` wrote it; an out-of-band one gets its id when sent. */
  readonly bytes: Buffer;
  readonly oob: boolean;
  /** The client's id, as QEMU would echo it; undefined when it sent none. */
  readonly idText: string | undefined;
  /** Rewrites QEMU's reply (as QEMU sent it) before the client's id goes in. */
  readonly transform?: (reply: UpstreamMessage) => UpstreamMessage;
  /** When qmp-mux read it from its client, ms (`performance.now()`). */
  readonly receivedAt?: number;
  /** Its arguments, kept only when the audit log records them. */
  readonly args?: JsonObject | undefined;
  readonly observer?: CommandObserver;
}

interface Queued {
  readonly command: UpstreamCommand;
  readonly slot: ReplySlot;
}

interface InFlight extends Queued {
  /** When it was written, in ms (`performance.now()`). */
  readonly sentAt: number;
}

/** One client's commands waiting for their turn to go to QEMU. */
export class Lane {
  /** @internal */
  readonly queue = new FifoQueue<Queued>();
  closed = false;

  constructor(private readonly dispatcher: Dispatcher) {}

  /** Queues an in-band command; its reply goes to `slot`. */
  enqueue(command: UpstreamCommand, slot: ReplySlot): void {
    if (this.closed) return;
    this.queue.push({ command, slot });
    this.dispatcher.wake(this);
  }

  /** The client is gone: what it has queued is dropped. */
  close(): void {
    this.closed = true;
    this.queue.clear();
  }
}

export interface DispatcherStats {
  /** In-band commands QEMU has and has not answered yet. */
  inBandInFlight: number;
  /** All commands QEMU has and has not answered yet. */
  inFlight: number;
  /** Commands sent to QEMU since start. */
  sent: number;
}

/**
 * Decides which client's command goes to QEMU next and routes each reply
 * back. In-band commands are taken one per client in turn (least recently
 * served first), at most `window` at a time, so a client with a long queue
 * delays another by at most the window; out-of-band commands go at once.
 *
 * QEMU answers in-band commands strictly in the order it read them, errors
 * included, and only `exec-oob` replies can overtake them. So in-band
 * commands go without an id (QEMU reads one byte per system call, and an id
 * is 7 more) and their replies are matched in order; out-of-band commands
 * carry a small id of qmp-mux's own. A reply that cannot belong to what is
 * in flight means QEMU's view and qmp-mux's differ: `reply` says so, and
 * the connection must be dropped rather than anything misrouted.
 */
export class Dispatcher {
  /** Lanes with commands queued, in turn order. */
  private readonly turns = new FairQueue<Lane>();
  private readonly inBand = new FifoQueue<InFlight>();
  /** Out-of-band commands in flight, by id. */
  private outOfBand: (InFlight | undefined)[] = [];
  private outOfBandCount = 0;
  /** Out-of-band commands that came while QEMU was away; they go first. */
  private readonly outOfBandWaiting = new FifoQueue<Queued>();
  private sent = 0;
  private send: ((bytes: Buffer) => void) | undefined;
  private ids = new IdPool();
  private idleWaiters: (() => void)[] = [];

  constructor(
    /** In-band commands QEMU holds at most; 7 keeps QEMU's 8-deep queue from ever suspending its monitor. */
    private readonly window: number,
  ) {}

  /** A new lane, for a client's in-band commands. */
  lane(): Lane {
    return new Lane(this);
  }

  /** Starts sending through `send` (a newly negotiated upstream connection). */
  attach(send: (bytes: Buffer) => void): void {
    this.send = send;
    this.ids = new IdPool();
    for (let waiting = this.outOfBandWaiting.shift(); waiting; waiting = this.outOfBandWaiting.shift()) this.dispatch(waiting.command, waiting.slot);
    this.pump();
  }

  /**
   * The upstream connection is gone: nothing in flight will be answered, and
   * each such reply slot is told so. Queued commands stay for the next one.
   */
  detach(): void {
    this.send = undefined;
    const lost: InFlight[] = [];
    for (let entry = this.inBand.shift(); entry; entry = this.inBand.shift()) lost.push(entry);
    for (const entry of this.outOfBand) if (entry) lost.push(entry);
    this.outOfBand = [];
    this.outOfBandCount = 0;
    for (const entry of lost) entry.slot.lost();
    this.checkIdle();
  }

  /** @internal `lane` has commands queued. */
  wake(lane: Lane): void {
    this.turns.add(lane);
    this.pump();
  }

  /** An out-of-band command: sent at once, or first thing once QEMU is there. */
  sendOob(command: UpstreamCommand, slot: ReplySlot): void {
    if (this.send) this.dispatch(command, slot);
    else this.outOfBandWaiting.push({ command, slot });
  }

  /** A command of qmp-mux's own; resolves with QEMU's reply, or undefined if QEMU goes away first. */
  call(name: string): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      if (!this.send) return resolve(undefined);
      const slot: ReplySlot = { fill: (reply) => resolve(Buffer.from(reply)), lost: () => resolve(undefined) };
      this.dispatch({ name, bytes: Buffer.from(`{"execute":"${name}"}`, 'latin1'), oob: false, idText: undefined }, slot);
    });
  }

  /**
   * A `return` or `error` message from QEMU, delivered to whoever it answers.
   * Returns undefined, or why it cannot answer anything in flight.
   */
  reply(message: UpstreamMessage): string | undefined {
    let entry: InFlight | undefined;
    if (message.id) {
      const id = message.id.valueStart >= 0 ? ourId(message.bytes, message.id) : -1;
      entry = id >= 0 ? this.outOfBand[id] : undefined;
      if (!entry) return 'a reply with an id qmp-mux did not give';
      this.outOfBand[id] = undefined;
      this.outOfBandCount--;
      this.ids.release(id);
    } else {
      if (isReaderError(message)) return 'an error QEMU reports only for input it could not read';
      entry = this.inBand.shift();
      if (!entry) return 'a reply when none was owed';
    }
    const { transform, observer } = entry.command;
    observer?.answered(entry.command, message, (performance.now() - entry.sentAt) / 1000);
    entry.slot.fill(replyForClient(transform ? transform(message) : message, entry.command.idText));
    this.pump();
    this.checkIdle();
    return undefined;
  }

  /** Resolves once nothing is queued or in flight (at once if so already, or if QEMU is away). */
  idle(): Promise<void> {
    return new Promise((resolve) => {
      this.idleWaiters.push(resolve);
      this.checkIdle();
    });
  }

  get stats(): DispatcherStats {
    return { inBandInFlight: this.inBand.length, inFlight: this.inBand.length + this.outOfBandCount, sent: this.sent };
  }

  private pump(): void {
    if (!this.send) return;
    while (this.inBand.length < this.window) {
      const lane = this.turns.take();
      if (!lane) return;
      const next = lane.queue.shift();
      if (next) this.dispatch(next.command, next.slot);
      if (lane.queue.length > 0) this.turns.add(lane);
    }
  }

  private dispatch(command: UpstreamCommand, slot: ReplySlot): void {
    const entry: InFlight = { command, slot, sentAt: performance.now() };
    this.sent++;
    if (!command.oob) {
      this.inBand.push(entry);
      this.send!(command.bytes);
      return;
    }
    const id = this.ids.take();
    this.outOfBand[id] = entry;
    this.outOfBandCount++;
    this.send!(withUpstreamId(command.bytes, id));
  }

  private checkIdle(): void {
    if (this.idleWaiters.length === 0) return;
    if (this.send && (this.inBand.length > 0 || this.outOfBandCount > 0 || this.turns.size > 0)) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
