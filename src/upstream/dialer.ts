import { createConnection, type Socket } from 'node:net';
import type { BackoffOptions } from '../config/options.ts';
import type { Logger } from '../log.ts';
import { formatAddress, type Address } from '../net/address.ts';
import { Backoff } from './backoff.ts';

/** Sends a command of qmp-mux's own to QEMU; resolves with the reply, or undefined if QEMU is not there. */
export type AskQemu = (command: string) => Promise<Buffer | undefined>;

/** Where upstream connections come from. */
export interface UpstreamSource {
  /** Begins producing connections; `onSocket` gets each connected socket. */
  start(onSocket: (socket: Socket) => void): void;
  /** The connection became usable (QEMU greeted and negotiated). */
  ready(): void;
  /** The last connection is gone; produce another. */
  lost(): void;
  /** Stops producing connections (and deals with a QEMU it started, using `ask`). */
  stop(ask: AskQemu): Promise<void>;
}

/**
 * Dials QEMU's QMP socket until it answers. Refused and reset connects are
 * normal (QEMU's listener has a backlog of one, or QEMU is not up yet) and
 * retried with backoff; the log says once that QEMU is unreachable, not at
 * every retry.
 */
export class Dialer implements UpstreamSource {
  private readonly backoff: Backoff;
  private timer: NodeJS.Timeout | undefined;
  private onSocket: ((socket: Socket) => void) | undefined;
  private stopped = false;
  private failingSince: number | undefined;
  private warned = false;
  private attempt: Socket | undefined;

  constructor(
    private readonly address: Address,
    backoff: BackoffOptions,
    private readonly log: Logger,
    /** How long failures are expected before they are worth a warning, ms. */
    private readonly quietMs = 0,
    /** Runs before each retry; what it throws is logged, and the retry goes ahead. */
    private readonly beforeRetry?: () => Promise<void>,
  ) {
    this.backoff = new Backoff(backoff);
  }

  start(onSocket: (socket: Socket) => void): void {
    this.onSocket = onSocket;
    this.dial();
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

  private dial(): void {
    if (this.stopped) return;
    const a = this.address;
    const socket = a.type === 'unix' ? createConnection(a.path) : createConnection(a.port, a.host);
    this.attempt = socket;
    const onError = (err: Error): void => {
      this.attempt = undefined;
      socket.destroy();
      const now = Date.now();
      this.failingSince ??= now;
      if (!this.warned && now - this.failingSince >= this.quietMs) {
        this.warned = true;
        this.log.warn('QEMU unreachable, retrying', { upstream: formatAddress(a), error: err.message });
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
      await this.beforeRetry?.();
    } catch (e) {
      this.log.warn('preparing to dial QEMU failed', { upstream: formatAddress(this.address), error: (e as Error).message });
    }
    this.dial();
  }
}
