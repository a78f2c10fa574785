import { createConnection, type Socket } from 'node:net';
import type { BackoffOptions } from './backoff.ts';
import type { Endpoint } from '../downstream/endpoint.ts';
import type { Logger } from '../log.ts';
import { formatAddress, type Address } from '../net/address.ts';
import { Backoff } from './backoff.ts';
import type { UpstreamSource } from './source.ts';

export interface DialerOptions {
  address: Address;
  backoff: BackoffOptions;
  log: Logger;
  /** How long failures are expected before they are worth a warning, ms (default 0). */
  quietMs?: number;
  /** Runs before each retry; what it throws is logged, and the retry goes ahead. */
  beforeRetry?: () => Promise<void>;
}

/**
 * Dials QEMU's QMP socket until it answers. Refused and reset connects are
 * normal (QEMU's listener has a backlog of one, or QEMU is not up yet) and
 * retried with backoff; the log says once that QEMU is unreachable, not at
 * every retry.
 */
export class Dialer implements UpstreamSource {
  readonly mode = 'connect';
  readonly endpoints: readonly Endpoint[] = [];
  private readonly backoff: Backoff;
  private timer: NodeJS.Timeout | undefined;
  private onSocket: ((socket: Socket) => void) | undefined;
  private stopped = false;
  private failingSince: number | undefined;
  private warned = false;
  private attempt: Socket | undefined;

  constructor(private readonly options: DialerOptions) {
    this.backoff = new Backoff(options.backoff);
  }

  open(): Promise<void> {
    return Promise.resolve();
  }

  start(onSocket: (socket: Socket) => void): Promise<void> {
    this.onSocket = onSocket;
    this.dial();
    return Promise.resolve();
  }

  ready(): void {
    this.backoff.reset();
  }

  lost(): void {
    // Not at once: a QEMU that accepts and drops connections must not make this a busy loop.
    this.retry();
  }

  stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.attempt?.destroy();
    return Promise.resolve();
  }

  /** Nothing to kill: dialing holds no process. */
  abort(): void {}

  private dial(): void {
    if (this.stopped) return;
    const a = this.options.address;
    const socket = a.type === 'unix' ? createConnection(a.path) : createConnection(a.port, a.host);
    this.attempt = socket;
    const onError = (err: Error): void => {
      this.attempt = undefined;
      socket.destroy();
      const now = Date.now();
      this.failingSince ??= now;
      if (!this.warned && now - this.failingSince >= (this.options.quietMs ?? 0)) {
        this.warned = true;
        this.options.log.warn('QEMU unreachable, retrying', { upstream: formatAddress(a), error: err.message });
      }
      this.retry();
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      this.attempt = undefined;
      this.failingSince = undefined;
      this.warned = false;
      this.onSocket?.(socket);
    });
  }

  private retry(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.prepareAndDial(), this.backoff.next());
  }

  private async prepareAndDial(): Promise<void> {
    try {
      await this.options.beforeRetry?.();
    } catch (e) {
      this.options.log.warn('preparing to dial QEMU failed', { upstream: formatAddress(this.options.address), error: (e as Error).message });
    }
    this.dial();
  }
}
