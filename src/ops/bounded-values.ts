import { OTHER } from './prometheus.ts';

export interface BoundedValuesOptions {
  /** Most values given a record of their own; every other value shares the `other` record. */
  cap: number;
  /**
   * The values admitted (the first `cap` of them). Without it, values are
   * admitted as they come, until `cap` have been.
   */
  allowed?: Iterable<string>;
}

/**
 * Maps strings that come from outside (a client's command names, QEMU's
 * event names) to a bounded set of records, one per admitted value and one
 * shared by all others, labelled `other`. Only admitted values are ever
 * stored, so no input can make it grow past `cap`.
 */
export class BoundedValues<T> {
  private readonly records = new Map<string, T>();
  private allowed: Set<string> | undefined;
  private other: T | undefined;

  constructor(
    private readonly make: (label: string) => T,
    private readonly options: BoundedValuesOptions,
  ) {
    if (options.allowed) this.allow(options.allowed);
  }

  /** The record for `value`: its own if admitted, otherwise the shared one. */
  get(value: string): T {
    const found = this.records.get(value);
    if (found !== undefined) return found;
    const admitted = this.allowed ? this.allowed.has(value) : this.records.size < this.options.cap;
    if (!admitted) return (this.other ??= this.make(OTHER));
    const created = this.make(value);
    this.records.set(value, created);
    return created;
  }

  /** Admits `value` too, if there is room below `cap`. */
  admit(value: string): void {
    if (this.allowed && this.allowed.size < this.options.cap) this.allowed.add(value);
  }

  /** Admits these values (the first `cap` of them) from now on, instead of the previous ones. */
  allow(values: Iterable<string>): void {
    const allowed = new Set<string>();
    for (const v of values) {
      if (allowed.size >= this.options.cap) break;
      allowed.add(v);
    }
    this.allowed = allowed;
    for (const v of this.records.keys()) if (!allowed.has(v)) this.records.delete(v);
  }
}
