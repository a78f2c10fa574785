import { setTimeout as sleep } from 'node:timers/promises';
import { QmpMuxError } from '../errors.ts';
import { checkTimerMs } from '../util/timer.ts';
import { parseClientAddress, type ServerAddress } from './address.ts';
import { abortError, QmpClient, type QmpClientOptions } from './qmp-client.ts';

/**
 * Options of each attempt, and how to retry. Aborting `signal` gives up
 * retrying as it ends an attempt, with what `QmpClient.connect` rejects
 * with: the signal's reason if that is a QmpMuxError, else a
 * ConnectionError `ADDRESS: aborted`; once connected, it closes the
 * connection.
 */
export interface RetryOptions extends QmpClientOptions {
  /** Wait after the first failed attempt, in ms; it doubles after each failure. Default 100; at most 2147483647, as the other delays (else a RangeError). */
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
  return retrying(address, options, (to, clientOptions) => QmpClient.connect(to, clientOptions));
}

/**
 * `connectRetrying`, each attempt made by `open` (the shell's -N opens
 * without negotiating).
 * @internal
 */
export async function retrying(address: string | ServerAddress, options: RetryOptions, open: (to: ServerAddress, options: QmpClientOptions) => Promise<QmpClient>): Promise<QmpClient> {
  const { initialDelay = 100, maxDelay = 2000, onRetry, ...clientOptions } = options;
  const signal = clientOptions.signal;
  // Bad options are thrown at once, not retried.
  checkTimerMs(initialDelay, 'initialDelay');
  checkTimerMs(maxDelay, 'maxDelay');
  const to = typeof address === 'string' ? parseClientAddress(address) : address;
  let delay = initialDelay;
  for (let attempt = 1; ; attempt++) {
    if (signal?.aborted) throw abortError(signal, to);
    try {
      return await open(to, clientOptions);
    } catch (e) {
      if (signal?.aborted) throw abortError(signal, to);
      if (!(e instanceof QmpMuxError)) throw e;
      onRetry?.(e, attempt);
    }
    try {
      await sleep(delay, undefined, signal ? { signal } : {});
    } catch (e) {
      if (signal?.aborted) throw abortError(signal, to);
      throw e;
    }
    delay = Math.min(delay * 2, maxDelay);
  }
}
