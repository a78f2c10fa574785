import type { IdMember } from '../qmp/upstream-message.ts';

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

/** The id of a message when it is one qmp-mux could have given (a small non-negative integer), else -1. */
export function ourId(bytes: Buffer, id: IdMember): number {
  const length = id.valueEnd - id.valueStart;
  if (length < 1 || length > 9) return -1;
  let n = 0;
  for (let i = id.valueStart; i < id.valueEnd; i++) {
    const digit = bytes[i]! - 0x30;
    if (digit < 0 || digit > 9) return -1;
    n = n * 10 + digit;
  }
  return n;
}
