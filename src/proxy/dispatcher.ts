import { quoteString, writeUpstream } from '../json/writer.ts';
import type { UpstreamMessage } from '../qmp/upstream-framer.ts';
import type { Command, Session } from '../qmp/session.ts';
import type { IdSource } from './ids.ts';
import { FairQueue } from './fair-queue.ts';
import { idValueText, restoreId } from './reply.ts';

interface InFlight {
  readonly session: Session;
  readonly command: Command;
  readonly deliver: (data: Buffer) => void;
}

export interface DispatcherStats {
  /** In-band commands QEMU has and has not answered yet. */
  inBandInFlight: number;
  /** All commands QEMU has and has not answered yet. */
  inFlight: number;
  /** Replies whose id qmp-mux did not recognise (stale, or for a client gone). */
  droppedReplies: number;
}

/**
 * Decides which client's command goes to QEMU next and routes each reply
 * back. In-band commands are taken one per client in turn (least recently
 * served first), at most `window` at a time, so a client with a long queue
 * delays another by at most the window; out-of-band commands go at once. Every command carries
 * an id of qmp-mux's own, so replies find their way whatever ids clients use.
 */
export class Dispatcher {
  /** Sessions with commands queued, in turn order. */
  private readonly turns = new FairQueue<Session>();
  private readonly inFlight = new Map<string, InFlight>();
  private inBand = 0;
  private dropped = 0;
  private send: ((text: string) => void) | undefined;

  constructor(
    private readonly ids: IdSource,
    /** In-band commands QEMU holds at most; 7 keeps QEMU's 8-deep queue from ever suspending its monitor. */
    private readonly window: number,
  ) {}

  /** Starts sending through `send` (a negotiated upstream), or stops with undefined. */
  attach(send: ((text: string) => void) | undefined): void {
    this.send = send;
    if (send) this.pump();
  }

  /** The upstream went away: nothing in flight will be answered. */
  detach(): void {
    this.send = undefined;
    this.inFlight.clear();
    this.inBand = 0;
  }

  /** `session` has queued in-band commands. */
  wake(session: Session): void {
    this.turns.add(session);
    this.pump();
  }

  sendOob(session: Session, command: Command): void {
    if (!this.send) return;
    const id = this.ids.next();
    this.inFlight.set(id, { session, command, deliver: (data) => session.oobReply(data) });
    this.send(serialize(command, id));
  }

  /** A `return` or `error` message from QEMU. Returns false when nobody was waiting for it. */
  reply(message: UpstreamMessage): boolean {
    const id = message.id;
    const key = id && id.valueStart >= 0 ? idValueText(message.bytes, id) : undefined;
    const entry = key === undefined ? undefined : this.inFlight.get(key);
    if (!entry || !id || key === undefined) {
      this.dropped++;
      return false;
    }
    this.inFlight.delete(key);
    if (!entry.command.oob) this.inBand--;
    entry.deliver(restoreId(message.bytes, id, entry.command.idText));
    this.pump();
    return true;
  }

  get stats(): DispatcherStats {
    return { inBandInFlight: this.inBand, inFlight: this.inFlight.size, droppedReplies: this.dropped };
  }

  private pump(): void {
    const send = this.send;
    if (!send) return;
    while (this.inBand < this.window) {
      const session = this.turns.take();
      if (!session) return;
      const taken = session.takeCommand();
      if (taken && session.state !== 'closed') {
        const id = this.ids.next();
        this.inFlight.set(id, { session, command: taken.command, deliver: taken.reply });
        this.inBand++;
        send(serialize(taken.command, id));
      }
      if (session.queuedCommands > 0 && session.state !== 'closed') this.turns.add(session);
    }
  }

}

/** The command as qmp-mux sends it: its own serialization of what it validated. */
function serialize(command: Command, id: string): string {
  const verb = command.oob ? 'exec-oob' : 'execute';
  const args = command.args === undefined ? '' : `,"arguments":${writeUpstream(command.args)}`;
  return `{"${verb}":${quoteString(command.name)}${args},"id":${id}}`;
}
