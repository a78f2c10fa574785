import type { ReplySlot } from '../qmp/monitor-session.ts';
import { FifoQueue } from '../util/fifo.ts';
import { Fairness } from './fair-queue.ts';
import type { UpstreamCommand } from './upstream-command.ts';

/** Whose commands a lane holds: told when it may queue more, and when a reply it is owed is lost. */
export interface LaneOwner {
  /** Commands have gone on; it may queue more. */
  room(): void;
  /** QEMU's replies stopped matching the commands in flight, one of them its own: no reply will come. */
  repliesLost(): void;
}

/** A command waiting for its turn, with where its reply goes and whose it is. */
export interface Queued {
  readonly command: UpstreamCommand;
  readonly slot: ReplySlot;
  readonly lane: Lane;
}

/** A command QEMU has and has not answered yet. */
export interface InFlight extends Queued {
  /** When it was written, in ms (`performance.now()`). */
  readonly sentAt: number;
}

/** One client's place at the dispatcher: its commands waiting for their turn, and the bytes they hold. */
export class Lane {
  /** @internal */
  readonly queue = new FifoQueue<Queued>();
  /** @internal */
  readonly oobQueue = new FifoQueue<Queued>();
  /** @internal Its out-of-band commands QEMU has not answered. */
  oobInFlight = 0;
  /** @internal Its in-band commands QEMU has not answered. */
  inBandInFlight = 0;
  /** Bytes of its commands waiting in qmp-mux. */
  queuedBytes = 0;
  /** @internal Its owner waits to hear of room. */
  waitingForRoom = false;
  closed = false;

  /** @internal Its turns by bytes among the lanes. */
  readonly fairness = new Fairness();

  /** @internal Made by `Dispatcher.lane`. */
  constructor(readonly owner: LaneOwner) {}
}
