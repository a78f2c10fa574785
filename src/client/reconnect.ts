import { setTimeout as sleep } from 'node:timers/promises';
import { QmpMuxError } from '../errors.ts';
import { parseClientAddress, type ServerAddress } from './address.ts';
import { QmpClient, type QmpClientOptions } from './qmp-client.ts';

/** Options of each attempt, and how to retry; `signal` also gives up retrying (the promise rejects with its reason). */
export interface RetryOptions extends QmpClientOptions {
  /** Wait after the first failed attempt, in ms; it doubles after each failure. Default 100. */
  initialDelay?: number;
  /** Longest wait between attempts, in ms. Default 2000. */
  maxDelay?: number;
  /** Told about each failed attempt (1 for the first). */
  onRetry?: (error: QmpMuxError, attempt: number) => void;
}

/**
 * Connects, and keeps trying until a server greets: for a QEMU that is
 * restarting, directly or behind qmp-mux (which holds new clients until the
 * new QEMU is there, then greets them with its greeting).
 */
export async function connectRetrying(address: string | ServerAddress, options: RetryOptions = {}): Promise<QmpClient> {
  const { initialDelay = 100, maxDelay = 2000, onRetry, ...clientOptions } = options;
  const signal = clientOptions.signal;
  // A bad address is thrown at once, not retried.
  const to = typeof address === 'string' ? parseClientAddress(address) : address;
  let delay = initialDelay;
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await QmpClient.connect(to, clientOptions);
    } catch (e) {
      signal?.throwIfAborted();
      if (!(e instanceof QmpMuxError)) throw e;
      onRetry?.(e, attempt);
    }
    await sleep(delay, undefined, signal ? { signal } : {});
    delay = Math.min(delay * 2, maxDelay);
  }
}
