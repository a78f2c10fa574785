import type { Endpoint } from '../downstream/endpoint.ts';
import { EOL_BYTES } from '../qmp/wire.ts';
import type { ClientRegistry } from './registry.ts';

/**
 * Fans QEMU's events out to clients. Events read from QEMU in one go are
 * joined into one buffer, shared by every client that wants them all, so a
 * burst of events costs each client one write and no copy of its own.
 * QEMU's bytes go out unchanged.
 */
export class EventFanOut {
  private run: { name: string; bytes: Buffer }[] = [];

  constructor(
    private readonly endpoints: readonly Endpoint[],
    private readonly registry: ClientRegistry,
  ) {}

  add(name: string, bytes: Buffer): void {
    this.run.push({ name, bytes });
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
      const bytes = wanted.length === run.length ? (all ??= join(run)) : join(wanted);
      for (const session of sessions) session.event(bytes);
    }
  }
}

function join(events: readonly { bytes: Buffer }[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of events) parts.push(e.bytes, EOL_BYTES);
  return Buffer.concat(parts);
}
