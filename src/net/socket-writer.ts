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
 * Output from this many bytes on is written as the pieces it was given
 * (one writev), not joined first: a large reply goes on as the reads from
 * QEMU brought it. Below, joining is cheaper than the stream's work per piece.
 */
const PIECES_FROM = 16 * 1024;

/**
 * The one writer of a socket: everything qmp-mux writes to a client or to
 * QEMU goes through it, in order. What is written during one turn of the
 * event loop goes out as one write: one system call and one wake-up of the
 * reader per turn, however many messages.
 */
export class SocketWriter {
  private pending: (string | Buffer)[] = [];
  private pendingBytes = 0;
  private readonly written: (() => void) | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly flusher: SocketFlusher,
    /** Written on its own after each write, once that has gone out (see UpstreamConnection: a TLS monitor of QEMU's). */
    trailer?: Buffer,
  ) {
    this.written = trailer && (() => void (socket.destroyed || socket.write(trailer)));
  }

  /** Bytes waiting for this turn's flush. */
  get waiting(): number {
    return this.pendingBytes;
  }

  /** `data` after what was written before it; pieces are written together, in order. */
  write(data: string | Buffer | readonly Buffer[]): void {
    if (this.pending.length === 0) this.flusher.mark(this);
    if (typeof data === 'string' || Buffer.isBuffer(data)) {
      this.pending.push(data);
      this.pendingBytes += data.length;
    } else {
      for (const piece of data) {
        this.pending.push(piece);
        this.pendingBytes += piece.length;
      }
    }
    // A turn can read megabytes from QEMU (libuv reads on while there is input): they go on as they come.
    if (this.pendingBytes >= FLUSH_AT) this.flush();
  }

  /** Writes what is waiting now. */
  flush(): void {
    const { pending, pendingBytes, socket } = this;
    if (pending.length === 0) return;
    this.pending = [];
    this.pendingBytes = 0;
    if (socket.destroyed) return;
    if (pending.length === 1) {
      socket.write(pending[0]!, this.written);
    } else if (pendingBytes < PIECES_FROM) {
      socket.write(Buffer.concat(pending.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p))), this.written);
    } else {
      socket.cork();
      const last = pending.length - 1;
      for (let i = 0; i < last; i++) socket.write(pending[i]!, 'latin1');
      socket.write(pending[last]!, 'latin1', this.written);
      socket.uncork();
    }
  }
}
