import type { Socket } from 'node:net';

/**
 * Flushes, once per turn of the event loop, every writer that was written
 * to during it: after the loop has handled all the input that was ready,
 * so commands read from many clients in one turn go to QEMU in one write,
 * and a burst of replies or events costs each client one write. One per
 * mux instance, shared by its client connections and its upstream
 * connection.
 */
export class SocketFlusher {
  private dirty: SocketWriter[] = [];
  private scheduled = false;

  /** `writer` has output waiting: flush it at the end of this turn. */
  mark(writer: SocketWriter): void {
    this.dirty.push(writer);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flushAll());
  }

  private flushAll(): void {
    this.scheduled = false;
    const dirty = this.dirty;
    // By index: a writer made dirty during the loop is flushed in it too.
    for (let i = 0; i < dirty.length; i++) dirty[i]!.flush();
    this.dirty = [];
  }
}

/** Bytes a writer gathers before it writes, turn or not. */
const FLUSH_AT = 64 * 1024;

/**
 * The one writer of a socket: everything qmp-mux writes to a client or to
 * QEMU goes through it, in order. What is written during one turn of the
 * event loop goes out as one write: one system call and one wake-up of the
 * reader per turn, however many messages.
 */
export class SocketWriter {
  private pending: (string | Buffer)[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly socket: Socket,
    private readonly flusher: SocketFlusher,
  ) {}

  /** Bytes waiting for this turn's flush. */
  get waiting(): number {
    return this.pendingBytes;
  }

  write(data: string | Buffer): void {
    if (this.pending.length === 0) this.flusher.mark(this);
    this.pending.push(data);
    this.pendingBytes += data.length;
    // A turn can read megabytes from QEMU (libuv reads on while there is input): they go on as they come.
    if (this.pendingBytes >= FLUSH_AT) this.flush();
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
    this.socket.write(Buffer.concat(pending.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p))));
  }
}
