import type { ReplySlot } from '../qmp/monitor-session.ts';
import { isReaderError, type UpstreamMessage } from '../qmp/upstream-message.ts';
import { errorReply, replyForClient, replyTooLarge, wireBuffer, withUpstreamId, type CommandEncoder } from '../qmp/wire.ts';
import { present } from '../util/assert.ts';
import { FifoQueue } from '../util/fifo.ts';
import { FairQueue } from './fair-queue.ts';
import { IdPool, ourId } from './ids.ts';
import { Lane, type InFlight, type LaneOwner, type Queued } from './lane.ts';
import type { UpstreamCommand } from './upstream-command.ts';

/**
 * Out-of-band commands QEMU holds at once, from all clients and from one.
 * QEMU runs them as soon as it has read them, so they are answered at once
 * unless QEMU is stuck; these bound what a client's out-of-band commands
 * can put ahead of others' in QEMU's input.
 */
const OOB_IN_FLIGHT = 8;
const OOB_IN_FLIGHT_PER_CLIENT = 1;

/**
 * In-band commands of one client QEMU holds at once. What a command costs
 * the others is not only the bytes QEMU reads for it but the time QEMU
 * takes to run it (`query-qmp-schema`: 30 bytes, tens of milliseconds), and
 * qmp-mux cannot know that before the reply. A client whose small commands
 * filled the window would make each other client's command wait for all of
 * them; one at a time, it waits for at most one.
 */
const IN_BAND_IN_FLIGHT_PER_CLIENT = 1;

export interface DispatcherOptions {
  /** In-band commands QEMU holds at most; 7 keeps QEMU's 8-deep queue from ever suspending its monitor. */
  window: number;
  /** Bytes of in-band commands QEMU holds at most; a larger command goes alone. */
  windowBytes: number;
  /** Bytes all lanes may hold queued before clients with commands queued are no longer read. */
  totalInputBytes: number;
  /** Writes commands for QEMU (qmp-mux's own too). */
  encoder: CommandEncoder;
  /** Hears of each command QEMU answered, with the reply as QEMU sent it and how long QEMU took. */
  answered(command: UpstreamCommand, reply: UpstreamMessage, qemuSeconds: number): void;
}

export interface DispatcherStats {
  /** In-band commands QEMU has and has not answered yet. */
  inBandInFlight: number;
  /** All commands QEMU has and has not answered yet. */
  inFlight: number;
  /** Bytes of in-band commands QEMU has and has not answered yet. */
  inFlightBytes: number;
  /** Bytes of commands queued in qmp-mux, all clients together. */
  queuedBytes: number;
  /** Commands sent to QEMU since start. */
  sent: number;
}

/**
 * Decides which client's command goes to QEMU next and routes each reply
 * back. QEMU reads its monitor a byte per system call and nothing else
 * meanwhile, so what a client costs the others is the bytes QEMU reads for
 * it: clients take turns by those bytes (FairQueue), and QEMU holds at most
 * `windowBytes` (or one larger command) and `window` in-band commands, so a
 * command finds at most that ahead of it whatever others queue. Out-of-band
 * commands skip the window (they must pass a stuck command) within small
 * bounds of their own.
 *
 * QEMU answers in-band commands in the order it read them, errors included;
 * only `exec-oob` replies overtake. So in-band commands go without an id
 * (7 bytes less to read) and are matched in order; out-of-band ones carry a
 * small id of qmp-mux's own. A reply that belongs to nothing in flight
 * means QEMU's view and qmp-mux's differ: `reply` says so, and the
 * connection must be dropped rather than anything misrouted.
 */
export class Dispatcher {
  /** Lanes with in-band commands queued, taking turns by bytes. */
  private readonly turns = new FairQueue<Lane>();
  /** Lanes with out-of-band commands queued and room to send one, in arrival order. */
  private readonly oobTurns = new FifoQueue<Lane>();
  private readonly inBand = new FifoQueue<InFlight>();
  private inFlightBytes = 0;
  /** Out-of-band commands in flight, by id. */
  private outOfBand: (InFlight | undefined)[] = [];
  private outOfBandCount = 0;
  private queuedBytes = 0;
  /** Lanes whose owners wait to hear of room. */
  private readonly waitingForRoom = new Set<Lane>();
  private sent = 0;
  private send: ((bytes: Buffer) => void) | undefined;
  private ids = new IdPool();
  private idleWaiters: (() => void)[] = [];

  constructor(private options: DispatcherOptions) {}

  /** New windows and input bound (a reload): they hold from the next command on. */
  setLimits(limits: Pick<DispatcherOptions, 'window' | 'windowBytes' | 'totalInputBytes'>): void {
    this.options = { ...this.options, ...limits };
    this.pump();
    this.roomMade(undefined);
  }

  /** A new lane, for a client's commands. */
  lane(owner: LaneOwner): Lane {
    return new Lane(owner);
  }

  /** Starts sending through `send` (a newly negotiated upstream connection). */
  attach(send: (bytes: Buffer) => void): void {
    this.send = send;
    this.ids = new IdPool();
    this.pump();
  }

  /**
   * The upstream connection is gone: nothing in flight will be answered,
   * and the owner of each such command is told so. Queued commands stay for
   * the next connection.
   */
  detach(): void {
    this.send = undefined;
    const lost: InFlight[] = [];
    for (let entry = this.inBand.shift(); entry; entry = this.inBand.shift()) lost.push(entry);
    for (const entry of this.outOfBand) if (entry) lost.push(entry);
    this.inFlightBytes = 0;
    this.outOfBand = [];
    this.outOfBandCount = 0;
    for (const entry of lost) {
      if (entry.command.oob) this.oobAnswered(entry.lane);
      else this.inBandAnswered(entry.lane);
      entry.lane.owner.repliesLost();
    }
    this.checkIdle();
  }

  /** Queues a client's command; its reply goes to `slot`. */
  enqueue(lane: Lane, command: UpstreamCommand, slot: ReplySlot): void {
    if (lane.closed) return;
    const entry: Queued = { command, slot, lane };
    const size = command.bytes.length;
    lane.queuedBytes += size;
    this.queuedBytes += size;
    if (command.oob) {
      lane.oobQueue.push(entry);
      if (lane.oobQueue.length === 1 && lane.oobInFlight < OOB_IN_FLIGHT_PER_CLIENT) this.oobTurns.push(lane);
    } else {
      lane.queue.push(entry);
      if (lane.inBandInFlight < IN_BAND_IN_FLIGHT_PER_CLIENT) this.turns.add(lane);
    }
    this.pump();
  }

  /**
   * Whether `lane` holds as much input as its client may (`maxInputBytes`
   * of its own, `held` bytes of a message still being sent included, or its
   * share of what all clients may hold). If so its owner hears of room once
   * commands have gone on. A lane with nothing queued is never full, so a
   * message being sent can always be finished.
   */
  full(lane: Lane, maxInputBytes: number, held: number): boolean {
    if (lane.queuedBytes === 0 || (lane.queuedBytes + held < maxInputBytes && this.queuedBytes < this.options.totalInputBytes)) return false;
    lane.waitingForRoom = true;
    this.waitingForRoom.add(lane);
    return true;
  }

  /** A lane's client is gone: what it queued is dropped (its commands in flight are still answered, to no one). */
  close(lane: Lane): void {
    if (lane.closed) return;
    lane.closed = true;
    this.queuedBytes -= lane.queuedBytes;
    lane.queuedBytes = 0;
    lane.queue.clear();
    lane.oobQueue.clear();
    this.turns.remove(lane);
    this.waitingForRoom.delete(lane);
    this.roomMade(undefined);
    this.checkIdle();
  }

  /** A command of qmp-mux's own; resolves with QEMU's reply, or undefined if QEMU goes away first. */
  call(name: string): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      if (!this.send) return resolve(undefined);
      const bytes = present(bufferOf(this.options.encoder.encode(name, undefined, false)), `qmp-mux's own command ${name}`);
      // A lane of its own, only to hear if the reply is lost.
      const lane = new Lane({ room: () => undefined, repliesLost: () => resolve(undefined) });
      this.dispatch({ command: { name, bytes, oob: false, idText: undefined }, slot: { fill: (reply) => resolve(wireBuffer(reply)) }, lane });
    });
  }

  /**
   * A `return` or `error` message from QEMU, delivered to whoever it answers.
   * Returns undefined, or why it cannot answer anything in flight.
   */
  reply(message: UpstreamMessage): string | undefined {
    const { tooLarge } = message;
    let entry: InFlight | undefined;
    if (tooLarge ? tooLarge.id !== undefined : message.id) {
      const id = tooLarge ? (tooLarge.id ?? -1) : message.id && message.id.valueStart >= 0 ? ourId(message.bytes, message.id) : -1;
      entry = id >= 0 ? this.outOfBand[id] : undefined;
      if (!entry) return 'a reply with an id qmp-mux did not give';
      this.outOfBand[id] = undefined;
      this.outOfBandCount--;
      this.ids.release(id);
      this.oobAnswered(entry.lane);
    } else {
      if (isReaderError(message)) return 'an error QEMU reports only for input it could not read';
      entry = this.inBand.shift();
      if (!entry) return 'a reply when none was owed';
      this.inFlightBytes -= entry.command.bytes.length;
      this.inBandAnswered(entry.lane);
    }
    const { command } = entry;
    this.options.answered(command, message, (performance.now() - entry.sentAt) / 1000);
    const forClient = tooLarge
      ? errorReply(command.idText, 'GenericError', replyTooLarge(command.name, tooLarge))
      : replyForClient(command.transform ? command.transform(message) : message, command.idText);
    entry.slot.fill(forClient);
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

  /** When the oldest command QEMU has not answered was sent (`performance.now()`), if any. */
  get oldestSentAt(): number | undefined {
    let oldest = this.inBand.peek()?.sentAt;
    if (this.outOfBandCount > 0) {
      for (const entry of this.outOfBand) if (entry && (oldest === undefined || entry.sentAt < oldest)) oldest = entry.sentAt;
    }
    return oldest;
  }

  /** How long the oldest command QEMU has not answered has waited, ms (0 when none). */
  get oldestCommandMs(): number {
    const oldest = this.oldestSentAt;
    return oldest === undefined ? 0 : performance.now() - oldest;
  }

  /** Bytes all clients' input may hold together (a reload may change it). */
  get totalInputBytes(): number {
    return this.options.totalInputBytes;
  }

  get stats(): DispatcherStats {
    return {
      inBandInFlight: this.inBand.length,
      inFlight: this.inBand.length + this.outOfBandCount,
      inFlightBytes: this.inFlightBytes,
      queuedBytes: this.queuedBytes,
      sent: this.sent,
    };
  }

  private pump(): void {
    if (!this.send) return;
    this.pumpOutOfBand();
    const { window, windowBytes } = this.options;
    while (this.inBand.length < window) {
      const lane = this.turns.peek();
      const next = lane?.queue.peek();
      if (!lane || !next) return;
      const size = next.command.bytes.length;
      if (this.inFlightBytes > 0 && this.inFlightBytes + size > windowBytes) return;
      this.turns.take(size);
      lane.queue.shift();
      this.dispatch(next);
      if (lane.queue.length > 0 && lane.inBandInFlight < IN_BAND_IN_FLIGHT_PER_CLIENT) this.turns.add(lane);
      this.dequeued(lane, size);
    }
  }

  private pumpOutOfBand(): void {
    while (this.outOfBandCount < OOB_IN_FLIGHT) {
      const lane = this.oobTurns.shift();
      if (!lane) return;
      const next = lane.oobQueue.shift();
      if (!next || lane.closed) continue;
      lane.oobInFlight++;
      if (lane.oobQueue.length > 0 && lane.oobInFlight < OOB_IN_FLIGHT_PER_CLIENT) this.oobTurns.push(lane);
      this.dispatch(next);
      this.dequeued(lane, next.command.bytes.length);
    }
  }

  /** A lane's in-band command was answered (or lost): its next one may take its turn. */
  private inBandAnswered(lane: Lane): void {
    lane.inBandInFlight--;
    if (lane.queue.length > 0 && !lane.closed && lane.inBandInFlight < IN_BAND_IN_FLIGHT_PER_CLIENT) this.turns.add(lane);
  }

  /** A lane's out-of-band command was answered (or lost): it may send another. */
  private oobAnswered(lane: Lane): void {
    lane.oobInFlight--;
    if (lane.oobQueue.length > 0 && lane.oobInFlight === OOB_IN_FLIGHT_PER_CLIENT - 1) this.oobTurns.push(lane);
  }

  private dequeued(lane: Lane, size: number): void {
    lane.queuedBytes -= size;
    this.queuedBytes -= size;
    this.roomMade(lane);
  }

  /** Commands left `lane` (or some lane): owners waiting for room may have it now. */
  private roomMade(lane: Lane | undefined): void {
    if (this.waitingForRoom.size === 0) return;
    if (this.queuedBytes >= this.options.totalInputBytes) {
      if (lane?.waitingForRoom) this.wakeForRoom(lane);
      return;
    }
    for (const waiting of this.waitingForRoom) this.wakeForRoom(waiting);
  }

  private wakeForRoom(lane: Lane): void {
    lane.waitingForRoom = false;
    this.waitingForRoom.delete(lane);
    lane.owner.room();
  }

  private dispatch(entry: Queued): void {
    const send = present(this.send, 'a connection to QEMU to send on');
    const inFlight: InFlight = { command: entry.command, slot: entry.slot, lane: entry.lane, sentAt: performance.now() };
    const { command } = entry;
    this.sent++;
    if (!command.oob) {
      entry.lane.inBandInFlight++;
      this.inBand.push(inFlight);
      this.inFlightBytes += command.bytes.length;
      send(command.bytes);
      return;
    }
    const id = this.ids.take();
    this.outOfBand[id] = inFlight;
    this.outOfBandCount++;
    send(withUpstreamId(command.bytes, id));
  }

  private checkIdle(): void {
    if (this.idleWaiters.length === 0) return;
    if (this.send && (this.inBand.length > 0 || this.outOfBandCount > 0 || this.queuedBytes > 0)) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

function bufferOf(encoded: Buffer | { tooLarge: string }): Buffer | undefined {
  return Buffer.isBuffer(encoded) ? encoded : undefined;
}
