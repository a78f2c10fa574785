import { quoteString, writeUpstream } from '../json/writer.ts';
import { frameOne, type UpstreamMessage } from '../qmp/upstream-framer.ts';
import type { Command, Session } from '../qmp/session.ts';
import { FairQueue } from './fair-queue.ts';
import { IdPool, ourId } from './ids.ts';
import { restoreId } from './reply.ts';

interface InFlight {
  readonly command: Command;
  /** Counts against the window. */
  readonly inBand: boolean;
  /** Takes the reply as the client gets it. */
  readonly deliver: (data: Buffer) => void;
  /** The upstream went away before the reply. */
  readonly abandon: (() => void) | undefined;
}

export interface DispatcherStats {
  /** In-band commands QEMU has and has not answered yet. */
  inBandInFlight: number;
  /** All commands QEMU has and has not answered yet. */
  inFlight: number;
  /** Commands sent to QEMU since start. */
  sent: number;
  /** Replies whose id qmp-mux did not recognise (stale, or for a client gone). */
  droppedReplies: number;
}

/**
 * Decides which client's command goes to QEMU next and routes each reply
 * back. In-band commands are taken one per client in turn (least recently
 * served first), at most `window` at a time, so a client with a long queue
 * delays another by at most the window; out-of-band commands go at once.
 * Every command carries an id of qmp-mux's own, so replies find their way
 * whatever ids clients use.
 */
export class Dispatcher {
  /** Sessions with commands queued, in turn order. */
  private readonly turns = new FairQueue<Session>();
  /** Indexed by id. */
  private inFlight: (InFlight | undefined)[] = [];
  private inFlightCount = 0;
  private inBand = 0;
  private sent = 0;
  private dropped = 0;
  private send: ((text: string) => void) | undefined;
  private ids = new IdPool();
  private idleWaiters: (() => void)[] = [];

  constructor(
    /** In-band commands QEMU holds at most; 7 keeps QEMU's 8-deep queue from ever suspending its monitor. */
    private readonly window: number,
  ) {}

  /** Starts sending through `send` (a newly negotiated upstream connection). */
  attach(send: (text: string) => void): void {
    this.send = send;
    this.ids = new IdPool();
    this.pump();
  }

  /** The upstream went away: nothing in flight will be answered. */
  detach(): void {
    this.send = undefined;
    const lost = this.inFlight;
    this.inFlight = [];
    this.inFlightCount = 0;
    this.inBand = 0;
    for (const entry of lost) entry?.abandon?.();
    this.checkIdle();
  }

  /** `session` has queued in-band commands. */
  wake(session: Session): void {
    this.turns.add(session);
    this.pump();
  }

  sendOob(session: Session, command: Command): void {
    if (!this.send) return;
    this.dispatch(command, false, (data) => session.oobReply(data));
  }

  /** A command of qmp-mux's own; resolves with QEMU's reply, or undefined if QEMU goes away first. */
  call(name: string): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      if (!this.send) return resolve(undefined);
      this.dispatch({ name, args: undefined, idText: undefined, oob: false }, false, resolve, () => resolve(undefined));
    });
  }

  /** A `return` or `error` message from QEMU. Returns false when nobody was waiting for it. */
  reply(message: UpstreamMessage): boolean {
    const at = message.id;
    const id = at && at.valueStart >= 0 ? ourId(message.bytes, at) : -1;
    const entry = id >= 0 ? this.inFlight[id] : undefined;
    if (!entry || !at) {
      this.dropped++;
      return false;
    }
    this.inFlight[id] = undefined;
    this.inFlightCount--;
    this.ids.release(id);
    if (entry.inBand) this.inBand--;
    const transform = entry.command.transform;
    const changed = transform ? frameOne(transform(message.bytes)) : undefined;
    entry.deliver(changed?.id ? restoreId(changed.bytes, changed.id, entry.command.idText) : restoreId(message.bytes, at, entry.command.idText));
    this.pump();
    this.checkIdle();
    return true;
  }

  /** Resolves once nothing is queued or in flight (at once if so already, or if QEMU is away). */
  idle(): Promise<void> {
    return new Promise((resolve) => {
      this.idleWaiters.push(resolve);
      this.checkIdle();
    });
  }

  get stats(): DispatcherStats {
    return { inBandInFlight: this.inBand, inFlight: this.inFlightCount, sent: this.sent, droppedReplies: this.dropped };
  }

  private pump(): void {
    if (!this.send) return;
    while (this.inBand < this.window) {
      const session = this.turns.take();
      if (!session) return;
      const taken = session.takeCommand();
      if (taken && session.state !== 'closed') this.dispatch(taken.command, true, taken.reply);
      if (session.queuedCommands > 0 && session.state !== 'closed') this.turns.add(session);
    }
  }

  private dispatch(command: Command, inBand: boolean, deliver: (data: Buffer) => void, abandon?: () => void): void {
    const id = this.ids.take();
    this.inFlight[id] = { command, inBand, deliver, abandon };
    this.inFlightCount++;
    if (inBand) this.inBand++;
    this.sent++;
    this.send!(serialize(command, id));
  }

  private checkIdle(): void {
    if (this.idleWaiters.length === 0) return;
    if (this.send && (this.inFlightCount > 0 || this.turns.size > 0)) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

/**
 * The command as qmp-mux sends it: its own serialization of what it
 * validated, as short as possible (QEMU pays for every byte); empty
 * `arguments` are left out, which QEMU treats the same.
 */
function serialize(command: Command, id: number): string {
  const verb = command.oob ? 'exec-oob' : 'execute';
  const args = command.args === undefined || command.args.size === 0 ? '' : `,"arguments":${writeUpstream(command.args)}`;
  return `{"${verb}":${quoteString(command.name)}${args},"id":${id}}`;
}
