/**
 * Picks, among the members waiting for a turn, the one served least
 * recently. A member that was idle goes ahead of one that was just served,
 * so a client with one command never waits behind another's long queue for
 * more than the commands already in flight.
 */
export class FairQueue<T extends object> {
  private readonly heap: { item: T; key: number }[] = [];
  private readonly lastServed = new WeakMap<T, number>();
  private readonly waiting = new Set<T>();
  private clock = 0;

  get size(): number {
    return this.heap.length;
  }

  /** Adds `item` to those waiting for a turn (no-op if it already waits). */
  add(item: T): void {
    if (this.waiting.has(item)) return;
    this.waiting.add(item);
    // Never served: older than anything served; among those, first come first served.
    const key = this.lastServed.get(item) ?? -Number.MAX_SAFE_INTEGER + this.clock++;
    this.heap.push({ item, key });
    this.up(this.heap.length - 1);
  }

  /** Removes and returns the member served least recently, recording that it is served now. */
  take(): T | undefined {
    const top = this.heap[0];
    if (!top) return undefined;
    const last = this.heap.pop()!;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.down(0);
    }
    this.waiting.delete(top.item);
    this.lastServed.set(top.item, this.clock++);
    return top.item;
  }

  private up(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent]!.key <= h[i]!.key) return;
      [h[parent], h[i]] = [h[i]!, h[parent]!];
      i = parent;
    }
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let least = i;
      if (l < h.length && h[l]!.key < h[least]!.key) least = l;
      if (r < h.length && h[r]!.key < h[least]!.key) least = r;
      if (least === i) return;
      [h[least], h[i]] = [h[i]!, h[least]!];
      i = least;
    }
  }
}
