import type { Endpoint } from '../downstream/endpoint.ts';
import { withLiveSeq } from '../ops/event-wire.ts';
import { EOL_BYTES } from '../qmp/wire.ts';
import type { ClientRegistry } from '../mux/registry.ts';

interface Pending {
  readonly name: string;
  /** QEMU's bytes. */
  readonly bytes: Buffer;
  /** Its number in the journal. */
  readonly seq: number;
  /** The bytes with the number added, made once, for endpoints that want it. */
  numbered?: Buffer;
}

/**
 * Fans QEMU's events out to clients. Events read from QEMU in one go are
 * joined into one buffer, shared by every client that wants them all, so a
 * burst of events costs each client one write and no copy of its own.
 * QEMU's bytes go out unchanged, unless an endpoint asks for sequence
 * numbers; a client that chose its events gets a buffer of its own.
 */
export class EventFanOut {
  private run: Pending[] = [];

  constructor(
    private readonly endpoints: readonly Endpoint[],
    private readonly registry: ClientRegistry,
  ) {}

  add(name: string, bytes: Buffer, seq: number): void {
    this.run.push({ name, bytes, seq });
  }

  /** Delivers the events added so far (before anything that must come after them). */
  flush(): void {
    const run = this.run;
    if (run.length === 0) return;
    this.run = [];
    let all: Buffer | undefined;
    for (const endpoint of this.endpoints) {
      const sessions = this.registry.subscribersOf(endpoint);
      if (sessions.size === 0) continue;
      const wanted = run.filter((e) => endpoint.wantsEvent(e.name));
      if (wanted.length === 0) continue;
      const numbered = endpoint.options.eventSequence;
      const piece = (e: Pending): Buffer => (numbered ? (e.numbered ??= withLiveSeq(e.bytes, e.seq)) : e.bytes);
      let shared: Buffer | undefined;
      for (const [session, choice] of sessions) {
        if (!choice) {
          shared ??= wanted.length === run.length && !numbered ? (all ??= join(run.map(piece))) : join(wanted.map(piece));
          session.event(shared);
          continue;
        }
        const chosen = wanted.filter((e) => choice.accepts(e.name));
        if (chosen.length > 0) session.event(join(chosen.map(piece)));
      }
    }
  }
}

function join(events: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const bytes of events) parts.push(bytes, EOL_BYTES);
  return Buffer.concat(parts);
}
