import { EventOverflowError, type QmpMuxError } from '../errors.ts';

/**
 * An async iterator over pushed items (a client's events) with a bounded
 * queue. A reader that falls more than `maxBuffered` items behind gets an
 * EventOverflowError instead of an ever-growing queue; when the source ends,
 * the reader gets what is queued, then the end (or the source's error).
 */
export class EventStream<T> implements AsyncIterableIterator<T> {
  private readonly queue: T[] = [];
  private head = 0;
  private waiting: { resolve(r: IteratorResult<T>): void; reject(e: Error): void } | undefined;
  private ended = false;
  private error: QmpMuxError | undefined;

  constructor(
    private readonly maxBuffered: number,
    /** Called once when the stream ends, so the source stops pushing. */
    private readonly detach: () => void,
  ) {}

  push(item: T): void {
    if (this.ended) return;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w.resolve({ value: item, done: false });
      return;
    }
    if (this.queue.length - this.head >= this.maxBuffered) {
      this.end(new EventOverflowError(`more than ${this.maxBuffered} events waiting to be read`));
      return;
    }
    this.queue.push(item);
  }

  /** No more items: after the queued ones, the reader gets `error` or the end. */
  end(error?: QmpMuxError): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    this.detach();
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      if (error) w.reject(error);
      else w.resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.head < this.queue.length) {
      const value = this.queue[this.head++]!;
      if (this.head === this.queue.length) {
        this.queue.length = 0;
        this.head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.ended) {
      const error = this.error;
      this.error = undefined;
      return error ? Promise.reject(error) : Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  return(): Promise<IteratorResult<T>> {
    this.end();
    this.queue.length = 0;
    this.head = 0;
    this.error = undefined;
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
