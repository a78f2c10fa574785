import { present } from '../util/assert.ts';

/** The event journal's bounds; the oldest events go first when either is reached. */
export interface JournalOptions {
  /** Events kept. 0 keeps none (sequence numbers still count). */
  maxEvents: number;
  /** Bytes of QEMU's event text kept. An event larger than this is numbered but not kept. */
  maxBytes: number;
}


/** One event as QEMU sent it, with the number qmp-mux gave it. */
export interface JournalEntry {
  readonly seq: number;
  readonly name: string;
  /** QEMU's event object, one line of compact JSON without line terminator. */
  readonly bytes: Buffer;
}

/** What `since` found. */
export interface JournalQuery {
  /** The kept events after `since` that the filter accepts, oldest first. */
  events: JournalEntry[];
  /** The sequence number of the newest event qmp-mux has seen (kept or not); 0 before the first. */
  last: number;
  /**
   * Some event after `since` is not in the reply for a reason other than the
   * filter: the ring has let it go, or `since` is ahead of `last` (numbers
   * from an earlier qmp-mux process). The caller missed something.
   */
  dropped: boolean;
}

/**
 * Every event QEMU sends, numbered 1, 2, 3... for the life of the object
 * (which the proxy keeps across QEMU reconnects), the newest kept in a ring
 * bounded by count and bytes. The events kept are always the newest ones
 * without a hole, `oldest` to `last`, so "was anything after N let go" is
 * one comparison. An event too large for the ring empties it (keeping the
 * older ones would leave a hole).
 *
 * A client catches up with no gap and no duplicates by remembering the
 * `last` of each reply (and the number of each live event, when its
 * endpoint adds them) and asking `since` that next time: a reply holds
 * exactly the numbers in (since, last].
 */
export class EventJournal {
  private entries: (JournalEntry | undefined)[] = [];
  private head = 0;
  private keptBytes = 0;
  private lastSeq = 0;
  private readonly maxEvents: number;
  private readonly maxBytes: number;

  constructor(options: Readonly<JournalOptions>) {
    this.maxEvents = options.maxEvents;
    this.maxBytes = options.maxBytes;
  }

  /** Numbers and keeps an event; returns its sequence number. */
  append(name: string, bytes: Buffer): number {
    const seq = ++this.lastSeq;
    this.entries.push({ seq, name, bytes });
    this.keptBytes += bytes.length;
    while (this.size > this.maxEvents || this.keptBytes > this.maxBytes) this.dropOldest();
    return seq;
  }

  /** The newest sequence number given; 0 before the first event. */
  get last(): number {
    return this.lastSeq;
  }

  /** The sequence number of the oldest event kept; `last + 1` when none is. */
  get oldest(): number {
    return this.entries[this.head]?.seq ?? this.lastSeq + 1;
  }

  /** Events kept. */
  get size(): number {
    return this.entries.length - this.head;
  }

  /** Bytes of event text kept. */
  get bytes(): number {
    return this.keptBytes;
  }

  /**
   * The kept events numbered after `since` that `accept` (given the event
   * name) lets through. `since` undefined is `since: 0`, "from the start":
   * every kept event, and `dropped` then says whether any event seen so far
   * has been let go.
   */
  since(since: number | undefined, accept: (name: string) => boolean): JournalQuery {
    const after = since ?? 0;
    const oldest = this.oldest;
    const events: JournalEntry[] = [];
    for (let seq = Math.max(after + 1, oldest); seq <= this.lastSeq; seq++) {
      const entry = present(this.entries[this.head + (seq - oldest)], `journal entry ${seq}`);
      if (accept(entry.name)) events.push(entry);
    }
    return { events, last: this.lastSeq, dropped: after + 1 < oldest || after > this.lastSeq };
  }

  private dropOldest(): void {
    const entry = present(this.entries[this.head], 'the oldest journal entry');
    this.entries[this.head++] = undefined;
    this.keptBytes -= entry.bytes.length;
    if (this.head === this.entries.length) {
      this.entries = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}
