import type { ClientCommand, ReplySlot } from '../qmp/monitor-session.ts';
import { FifoQueue } from '../util/fifo.ts';
import type { ReadCommand } from './command-report.ts';
import type { LockParty } from './lock-model.ts';
import type { MonitorLock } from './monitor-lock.ts';

/** A client's command waiting behind a lock, or behind another of its commands that does. */
export interface WaitingCommand {
  readonly command: ClientCommand;
  readonly reply: ReplySlot;
  readonly read: ReadCommand;
  /** What it holds, counted in its client's input bound. */
  readonly bytes: number;
  /** A lock request whose answer has not come yet. */
  asking: boolean;
  /** Held back by a lock itself (counted once as a wait). */
  held: boolean;
}

/**
 * One client's commands waiting for a lock, in the order it sent them:
 * once one waits, every later in-band one waits behind it, so that its
 * commands still run in its order. Their count and bytes are the lock's
 * to know (its input bound, `query-clients`, the metrics).
 */
export class WaitingCommands {
  private readonly queue = new FifoQueue<WaitingCommand>();

  constructor(
    private readonly lock: MonitorLock,
    private readonly party: LockParty,
  ) {}

  get length(): number {
    return this.queue.length;
  }

  /** The oldest, left in place. */
  peek(): WaitingCommand | undefined {
    return this.queue.peek();
  }

  push(entry: WaitingCommand): void {
    this.queue.push(entry);
    this.lock.waiting(this.party, 1, entry.bytes);
  }

  /** The oldest has gone on. */
  shift(): WaitingCommand | undefined {
    const entry = this.queue.shift();
    if (entry) this.lock.waiting(this.party, -1, -entry.bytes);
    return entry;
  }

  /** Drops them all (the client is gone, and the lock has forgotten it). */
  clear(): void {
    this.queue.clear();
  }
}
