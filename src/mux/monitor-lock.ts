import { OWN_QUERY_PREFIX } from '../qmp/extensions.ts';
import {
  aLock,
  describeHolding,
  LockParty,
  SYSTEM_CLOCK,
  type Holding,
  type LockAnswer,
  type LockClock,
  type LockEnd,
  type LockObserver,
  type LockRequest,
  type LockReset,
  type LockSnapshot,
  type PartyHooks,
  type UnlockAnswer,
} from './lock-model.ts';
import { describeWho, type Who } from './who.ts';

interface Waiter {
  readonly party: LockParty;
  readonly request: LockRequest;
  readonly askedAt: number;
  readonly answer: (answer: LockAnswer) => void;
  cancel: () => void;
}

/**
 * The monitor's lock, which lets one client at a time keep others' commands
 * out of QEMU while it works through several steps. Pure: fed what the
 * command routers see, with an injectable clock.
 *
 * A lock holds back, from the moment it is granted, what its mode says of
 * every other client's commands; its holder is answered once every such
 * command others had sent before (queued in qmp-mux or at QEMU) has been
 * answered, so that none can land among the holder's own. Requests that
 * find it held wait their turn in the order they came, if they asked to
 * wait. The lock ends when its holder unlocks it (once what it sent before
 * has been answered), disconnects, or sends
 * nothing for its lease (the clock stops while a command of its is at
 * QEMU); then the commands it held back go first, and the next waiter
 * gets it.
 */
export class MonitorLock {
  holding: Holding | undefined;
  /** Bytes of commands waiting behind locks, all clients together. */
  waitingBytes = 0;
  private waitingCommands = 0;
  private readonly clock: LockClock;
  private readonly waiters: Waiter[] = [];
  private readonly parties = new Map<number, LockParty>();
  /** Parties with commands held back, told when the lock ends. */
  private readonly blocked = new Set<LockParty>();
  /** Parties not read for want of room, told when there may be some. */
  private readonly roomWanted = new Set<LockParty>();
  private outstanding = 0;
  private changing = 0;
  /** When the holder last did something, for its lease (monotonic). */
  private lastActive = 0;
  private cancelLease: (() => void) | undefined;

  constructor(
    private readonly observer: LockObserver,
    clock: LockClock = SYSTEM_CLOCK,
  ) {
    this.clock = clock;
  }

  /** A client's place at the lock. */
  join(who: Who, hooks: PartyHooks): LockParty {
    const party = new LockParty(who, hooks);
    this.parties.set(who.client, party);
    return party;
  }

  /** The client is gone: its lock ends, its requests and the commands it had waiting are dropped. */
  leave(party: LockParty): void {
    if (party.gone) return;
    this.waiting(party, -party.waitingCommands, -party.waitingBytes);
    party.gone = true;
    this.parties.delete(party.who.client);
    this.outstanding -= party.outstanding;
    this.changing -= party.changing;
    party.outstanding = party.changing = 0;
    this.blocked.delete(party);
    this.roomWanted.delete(party);
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!;
      if (w.party !== party) continue;
      w.cancel();
      this.waiters.splice(i, 1);
    }
    if (this.holding?.party === party) this.end('disconnect');
    else this.tryGrant();
  }

  /**
   * Asks for the lock. The answer, when it can be given at once, is
   * returned; otherwise it comes later through `later`.
   */
  request(party: LockParty, request: LockRequest, later: (answer: LockAnswer) => void): LockAnswer | undefined {
    const held = this.holding;
    if (held?.party === party) return { refused: `This client already holds ${aLock(held.mode)} (since ${held.since.toISOString()}); unlock it first` };
    const askedAt = this.clock.now();
    if (held === undefined && this.waiters.length === 0) {
      const h = this.take(party, request, askedAt);
      if (h.grantedAt !== undefined) return { granted: h };
      h.answer = later;
      return undefined;
    }
    if (request.waitMs === 0) return { refused: `Cannot take ${aLock(request.mode)}: ${this.describeTaken()}` };
    const waiter: Waiter = { party, request, askedAt, answer: later, cancel: () => undefined };
    waiter.cancel = this.clock.after(request.waitMs, () => this.waitRanOut(waiter));
    this.waiters.push(waiter);
    this.observer.waited(party.who);
    return undefined;
  }

  /**
   * Ends the lock `party` holds, once every command it sent before has
   * been answered (what it queued before the unlock runs under the lock).
   * The answer, when it can be given at once, is returned; otherwise it
   * comes later through `later`.
   */
  unlock(party: LockParty, later: (answer: UnlockAnswer) => void): UnlockAnswer | undefined {
    const h = this.holding;
    if (h?.party === party && h.grantedAt !== undefined) {
      if (party.outstanding > 0) {
        h.unlocking = later;
        return undefined;
      }
      this.end('unlock');
      return { ended: h };
    }
    const last = party.lastEnd;
    if (last?.why === 'lease') return { refused: `This client holds no lock: its ${last.mode} lock ended at ${last.at.toISOString()}, when its lease of ${last.leaseMs} ms ran out` };
    return { refused: 'This client holds no lock' };
  }

  /** The lock another client holds that holds back a command of `party` (`changing`: one that changes state), if any. */
  blocks(party: LockParty, changing: boolean): Holding | undefined {
    const h = this.holding;
    if (h === undefined || h.party === party) return undefined;
    return h.mode === 'exclusive' || changing ? h : undefined;
  }

  /** A command of `party` is held back: `party` hears when the lock ends. `fresh`: it was not waiting before. */
  holdBack(party: LockParty, fresh: boolean): void {
    this.blocked.add(party);
    if (fresh) this.observer.waited(party.who);
  }

  /** `party` has `commands` more commands (`bytes` more bytes) waiting behind locks; negative for fewer. */
  waiting(party: LockParty, commands: number, bytes: number): void {
    if (party.gone) return;
    party.waitingCommands += commands;
    party.waitingBytes += bytes;
    this.waitingCommands += commands;
    this.waitingBytes += bytes;
    if (bytes < 0) this.wakeForRoom();
  }

  /**
   * Whether commands waiting behind locks and those queued for QEMU
   * (`queuedBytes`) together fill `totalBytes`: then `party`, unless it
   * holds the lock (it must stay able to end it), is not read until they
   * take less (it hears `room`).
   */
  crowded(party: LockParty, queuedBytes: number, totalBytes: number): boolean {
    if (this.waitingBytes === 0 || this.waitingBytes + queuedBytes < totalBytes || this.holding?.party === party) return false;
    this.roomWanted.add(party);
    return true;
  }

  /** A command of `party` went toward QEMU. */
  sent(party: LockParty, changing: boolean): void {
    party.outstanding++;
    this.outstanding++;
    if (changing) {
      party.changing++;
      this.changing++;
    }
  }

  /** QEMU answered a command of `party`. */
  answered(party: LockParty, changing: boolean): void {
    if (party.gone) return;
    party.outstanding--;
    this.outstanding--;
    if (changing) {
      party.changing--;
      this.changing--;
    }
    const h = this.holding;
    if (h?.party === party && party.outstanding === 0) {
      this.lastActive = this.clock.now();
      const unlocking = h.unlocking;
      if (unlocking) {
        h.unlocking = undefined;
        this.end('unlock');
        unlocking({ ended: h });
      }
    }
    if (h?.grantedAt === undefined) this.tryGrant();
    this.wakeForRoom();
  }

  /** `party` sent the command `name`: a holder's lease starts again (qmp-mux's own queries only watch, and do not count). */
  active(party: LockParty, name: string): void {
    if (this.holding?.party !== party || name.startsWith(OWN_QUERY_PREFIX)) return;
    this.lastActive = this.clock.now();
  }

  /**
   * QEMU went away or qmp-mux is stopping: the lock ends, nobody gets it,
   * and every client with commands waiting for it (lock requests
   * included) hears that they will not run.
   */
  reset(why: LockReset): void {
    const h = this.holding;
    if (h) this.finish(h, why);
    for (const w of this.waiters.splice(0)) w.cancel();
    this.blocked.clear();
    for (const party of [...this.parties.values()]) if (party.waitingCommands > 0) party.hooks.lockReset(why);
  }

  /** The lock now, if it is held or being granted. */
  snapshot(): LockSnapshot | undefined {
    const h = this.holding;
    if (h === undefined) return undefined;
    return { holding: h, leaseLeftMs: this.leaseLeft(h), waiting: this.waiters.map((w) => w.party.who), waitingCommands: this.waitingCommands - h.party.waitingCommands };
  }

  /** Where a client stands: holding the lock, or waiting for it. */
  stateOf(client: number): { lock: 'holds' | 'waits' | undefined; waitingCommands: number } {
    const party = this.parties.get(client);
    if (party === undefined) return { lock: undefined, waitingCommands: 0 };
    const lock = this.holding?.party === party ? 'holds' : this.waiters.some((w) => w.party === party) ? 'waits' : undefined;
    return { lock, waitingCommands: party.waitingCommands };
  }

  /** The bound on what all clients hold may have risen (a reload): clients not read for want of room are read again. */
  roomMade(): void {
    this.wakeForRoom();
  }

  /** Commands waiting behind locks now, all clients together. */
  get commandsWaiting(): number {
    return this.waitingCommands;
  }

  private take(party: LockParty, request: LockRequest, askedAt: number): Holding {
    const h: Holding = { party, mode: request.mode, reason: request.reason, leaseMs: request.leaseMs, since: this.clock.date(), askedAt, grantedAt: undefined, answer: undefined, unlocking: undefined };
    this.holding = h;
    this.tryGrant();
    return h;
  }

  /** Grants the lock being granted once no command of others it holds back is left at QEMU. */
  private tryGrant(): void {
    const h = this.holding;
    if (h === undefined || h.grantedAt !== undefined) return;
    const others = h.mode === 'exclusive' ? this.outstanding - h.party.outstanding : this.changing - h.party.changing;
    if (others > 0) return;
    const now = this.clock.now();
    h.grantedAt = now;
    this.lastActive = now;
    this.armLease(h.leaseMs);
    this.observer.granted(h, now - h.askedAt);
    const answer = h.answer;
    h.answer = undefined;
    answer?.({ granted: h });
  }

  /** The lock ends: what it held back goes first, then the next waiter gets it. */
  private end(why: LockEnd): void {
    const h = this.holding;
    if (h === undefined) return;
    this.finish(h, why);
    const blocked = [...this.blocked];
    this.blocked.clear();
    for (const party of blocked) if (!party.gone) party.hooks.lockChanged();
    while (this.holding === undefined) {
      const next = this.waiters.shift();
      if (next === undefined) return;
      next.cancel();
      const given = this.take(next.party, next.request, next.askedAt);
      if (given.grantedAt !== undefined) next.answer({ granted: given });
      else given.answer = next.answer;
    }
  }

  private finish(h: Holding, why: LockEnd): void {
    this.holding = undefined;
    this.cancelLease?.();
    this.cancelLease = undefined;
    const now = this.clock.now();
    h.party.lastEnd = { mode: h.mode, why, at: this.clock.date(), leaseMs: h.leaseMs };
    this.observer.ended(h, why, h.grantedAt === undefined ? 0 : now - h.grantedAt);
  }

  private waitRanOut(w: Waiter): void {
    const i = this.waiters.indexOf(w);
    if (i < 0) return;
    this.waiters.splice(i, 1);
    w.answer({ refused: `Cannot take ${aLock(w.request.mode)} within ${w.request.waitMs} ms: ${this.describeTaken()}` });
  }

  /** Who has the lock, for one who cannot have it. */
  private describeTaken(): string {
    if (this.holding) return describeHolding(this.holding);
    const next = this.waiters[0];
    return next ? `${describeWho(next.party.who)} asked for it first` : 'it is free again';
  }

  private armLease(ms: number): void {
    this.cancelLease?.();
    this.cancelLease = this.clock.after(ms, () => this.leaseCheck());
  }

  /** The lease timer fired: the lock ends if its holder has done nothing for its lease, else the timer waits for what is left. */
  private leaseCheck(): void {
    this.cancelLease = undefined;
    const h = this.holding;
    if (h?.grantedAt === undefined) return;
    const left = this.leaseLeft(h);
    if (left > 0) this.armLease(left);
    else this.end('lease');
  }

  private leaseLeft(h: Holding): number {
    if (h.grantedAt === undefined || h.party.outstanding > 0) return h.leaseMs;
    return Math.max(0, this.lastActive + h.leaseMs - this.clock.now());
  }

  private wakeForRoom(): void {
    if (this.roomWanted.size === 0) return;
    const parties = [...this.roomWanted];
    this.roomWanted.clear();
    for (const party of parties) party.hooks.room();
  }
}
