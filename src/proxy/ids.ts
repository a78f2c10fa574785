import { randomBytes } from 'node:crypto';

/**
 * Ids qmp-mux puts on the commands it sends, as JSON text. QEMU answers a
 * command that was still running when its connection dropped to whoever
 * connects next, so ids carry a per-process tag: a reply meant for an
 * earlier qmp-mux (or an earlier connection) can never match a new command.
 */
export class IdSource {
  private counter = 0;
  private readonly prefix: string;

  constructor(tag: string = randomBytes(4).readUInt32BE(0).toString(36)) {
    this.prefix = `"qmp-mux:${tag}:`;
  }

  next(): string {
    return `${this.prefix}${(this.counter++).toString(36)}"`;
  }
}
