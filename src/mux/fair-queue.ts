/** A member's standing in a FairQueue, kept on the member itself (no lookups, nothing allocated per turn). */
export class Fairness {
  /** Where its next turn starts: the cost served to it so far. */
  finish = 0;
  /** While it waits: its place, whether it owes (was served past the current turn), and when it came. */
  key = 0;
  owed = false;
  order = 0;
  waiting = false;
}

/** What a FairQueue takes turns among. */
export interface FairMember {
  readonly fairness: Fairness;
}

/**
 * Takes turns among members by what each has been served, not by how often:
 * start-time fair queuing (Goyal, Vin and Cheng, 1996). Each member's place
 * is the cost it has been served so far, counted from the moment it last
 * started waiting, so a member that sends one small thing goes ahead of one
 * that has just sent a large one, and members with long queues share by
 * cost. A member that was idle comes back at the current turn, owed nothing
 * and owing nothing; among members at the same place it goes first (as
 * fq_codel serves new flows first), so a client that asks something now and
 * then is served next however many others keep long queues. A member still
 * paying for its last turn cannot jump the queue by leaving and coming back:
 * its place remembers what it was served.
 */
export class FairQueue<T extends FairMember> {
  private readonly heap: T[] = [];
  /** The turn being served: the key of the member taken last. */
  private now = 0;
  /** Ties go to the member that started waiting first. */
  private arrivals = 0;

  get size(): number {
    return this.heap.length;
  }

  /** Adds `item` to those waiting for a turn (no-op if it already waits). */
  add(item: T): void {
    const f = item.fairness;
    if (f.waiting) return;
    f.waiting = true;
    f.key = Math.max(this.now, f.finish);
    f.owed = f.finish > this.now;
    f.order = this.arrivals++;
    this.heap.push(item);
    this.up(this.heap.length - 1);
  }

  /** The member whose turn it is, left waiting. */
  peek(): T | undefined {
    return this.heap[0];
  }

  /** Removes and returns the member whose turn it is, charging it `cost` for this turn. */
  take(cost: number): T | undefined {
    const top = this.heap[0];
    if (!top) return undefined;
    this.removeAt(0);
    const f = top.fairness;
    this.now = f.key;
    f.finish = f.key + cost;
    return top;
  }

  /** Forgets `item` if it waits (it left). */
  remove(item: T): void {
    if (!item.fairness.waiting) return;
    this.removeAt(this.heap.indexOf(item));
  }

  private removeAt(i: number): void {
    const h = this.heap;
    const gone = h[i];
    if (!gone) return;
    gone.fairness.waiting = false;
    const last = h.pop();
    if (!last || i === h.length) return;
    h[i] = last;
    this.down(i);
    this.up(i);
  }

  private before(a: number, b: number): boolean {
    const x = this.heap[a]?.fairness;
    const y = this.heap[b]?.fairness;
    if (!x || !y) return false;
    if (x.key !== y.key) return x.key < y.key;
    if (x.owed !== y.owed) return !x.owed;
    return x.order < y.order;
  }

  private swap(a: number, b: number): void {
    const h = this.heap;
    const x = h[a];
    const y = h[b];
    if (!x || !y) return;
    h[a] = y;
    h[b] = x;
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let least = i;
      if (this.before(l, least)) least = l;
      if (this.before(r, least)) least = r;
      if (least === i) return;
      this.swap(least, i);
      i = least;
    }
  }
}
