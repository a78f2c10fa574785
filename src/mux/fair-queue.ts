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
export class FairQueue<T extends object> {
  private readonly heap: { item: T; key: number; owed: boolean; order: number }[] = [];
  private readonly waiting = new Set<T>();
  /** Where each member's next turn starts: the cost served to it so far. */
  private readonly finish = new WeakMap<T, number>();
  /** The turn being served: the key of the member taken last. */
  private now = 0;
  /** Ties go to the member that started waiting first. */
  private arrivals = 0;

  get size(): number {
    return this.heap.length;
  }

  /** Adds `item` to those waiting for a turn (no-op if it already waits). */
  add(item: T): void {
    if (this.waiting.has(item)) return;
    this.waiting.add(item);
    const finish = this.finish.get(item) ?? 0;
    this.heap.push({ item, key: Math.max(this.now, finish), owed: finish > this.now, order: this.arrivals++ });
    this.up(this.heap.length - 1);
  }

  /** The member whose turn it is, left waiting. */
  peek(): T | undefined {
    return this.heap[0]?.item;
  }

  /** Removes and returns the member whose turn it is, charging it `cost` for this turn. */
  take(cost: number): T | undefined {
    const top = this.heap[0];
    if (!top) return undefined;
    const last = this.heap.pop();
    if (last && this.heap.length > 0) {
      this.heap[0] = last;
      this.down(0);
    }
    this.waiting.delete(top.item);
    this.now = top.key;
    this.finish.set(top.item, top.key + cost);
    return top.item;
  }

  /** Forgets `item` if it waits (it left). */
  remove(item: T): void {
    if (!this.waiting.delete(item)) return;
    const i = this.heap.findIndex((e) => e.item === item);
    const last = this.heap.pop();
    if (!last || i === this.heap.length) return;
    this.heap[i] = last;
    this.down(i);
    this.up(i);
  }

  private before(a: number, b: number): boolean {
    const x = this.heap[a];
    const y = this.heap[b];
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
