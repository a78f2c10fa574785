/** Reconnecting: the n-th retry waits a random time between half and all of min(maxMs, initialMs * 2^n). */
export interface BackoffOptions {
  /** First retry delay, ms. */
  initialMs: number;
  /** Longest retry delay, ms. */
  maxMs: number;
}

/**
 * Capped exponential backoff with jitter: the n-th retry waits a random time
 * between half and all of min(max, initial * 2^n), so many sidecars
 * restarted together do not dial in lockstep.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly options: BackoffOptions,
    private readonly random: () => number = Math.random,
  ) {}

  /** Delay before the next retry, in ms. */
  next(): number {
    const ceiling = Math.min(this.options.maxMs, this.options.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.round(ceiling / 2 + (ceiling / 2) * this.random());
  }

  reset(): void {
    this.attempt = 0;
  }
}
