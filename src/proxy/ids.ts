/**
 * Ids qmp-mux puts on the commands it sends: small integers, reused once
 * their reply has come. QEMU reads its monitor one byte per system call, so
 * every byte of a command costs it time; an id of one or two digits is the
 * cheapest that still routes every reply.
 *
 * Ids need only be unique among the commands in flight on one connection.
 * A reply QEMU still owes an earlier connection (or an earlier qmp-mux)
 * cannot be mistaken for one of ours: QEMU sends it before it answers the
 * `qmp_capabilities` that opens every connection, and the connection drops
 * whatever arrives before that answer.
 */
export class IdPool {
  private readonly free: number[] = [];
  private next = 0;

  /** An id not in use. */
  take(): number {
    return this.free.pop() ?? this.next++;
  }

  /** The reply to `id` has come; it may be used again. */
  release(id: number): void {
    this.free.push(id);
  }
}
