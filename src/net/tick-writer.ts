import type { Socket } from 'node:net';

/** Writers with output waiting, flushed together once per tick. */
const dirty: TickWriter[] = [];
let flushScheduled = false;

function flushAll(): void {
  flushScheduled = false;
  // By index: a writer made dirty during the loop is flushed in it too.
  for (let i = 0; i < dirty.length; i++) dirty[i]!.flush();
  dirty.length = 0;
}

/**
 * Writes to a socket, gathering everything written during one tick of the
 * event loop into one write: one system call and one wake-up of the reader
 * per tick, however many messages. All writers share one flush, scheduled
 * once per tick, so fanning an event out to a thousand clients costs a
 * thousand writes and no more.
 */
export class TickWriter {
  private pending: (string | Buffer)[] = [];
  private pendingBytes = 0;

  constructor(private readonly socket: Socket) {}

  /** Bytes waiting for this tick's flush. */
  get waiting(): number {
    return this.pendingBytes;
  }

  write(data: string | Buffer): void {
    if (this.pending.length === 0) {
      dirty.push(this);
      if (!flushScheduled) {
        flushScheduled = true;
        process.nextTick(flushAll);
      }
    }
    this.pending.push(data);
    this.pendingBytes += data.length;
  }

  /** Writes what is waiting now. */
  flush(): void {
    const pending = this.pending;
    if (pending.length === 0) return;
    this.pending = [];
    this.pendingBytes = 0;
    if (this.socket.destroyed) return;
    if (pending.length === 1) {
      this.socket.write(pending[0]!);
      return;
    }
    const buffers = pending.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p));
    this.socket.write(Buffer.concat(buffers));
  }
}
