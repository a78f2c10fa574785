import { createConnection, type Socket } from 'node:net';
import { connect as connectTls, type SecureContextOptions } from 'node:tls';
import type { BackoffOptions } from './backoff.ts';
import type { Endpoint } from '../downstream/endpoint.ts';
import type { Logger } from '../log.ts';
import { formatAddress, type Address } from '../net/address.ts';
import { readCredentials, tlsConnectOptions, type TlsClientSettings } from '../net/tls.ts';
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
  /** Dial with TLS (a TCP address): QEMU's certificate checked, ours presented. */
  tls?: TlsClientSettings | undefined;
}

/** What the upstream's TLS files are called in messages. */
const UPSTREAM_TLS_NAMES = { cert: 'upstream tls.cert', key: 'upstream tls.key', ca: 'upstream tls.ca' };

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
  private credentials: SecureContextOptions | undefined;

  /** Reads its TLS files, if it has any; a TlsError names the file. */
  constructor(private readonly options: DialerOptions) {
    this.backoff = new Backoff(options.backoff);
    this.credentials = options.tls && readCredentials(options.tls, options.tls.minVersion, UPSTREAM_TLS_NAMES);
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

  renewCredentials(): () => void {
    const { tls } = this.options;
    const fresh = tls && readCredentials(tls, tls.minVersion, UPSTREAM_TLS_NAMES);
    return () => (this.credentials = fresh);
  }

  private dial(): void {
    if (this.stopped) return;
    const a = this.options.address;
    const { credentials } = this;
    const socket =
      a.type === 'unix'
        ? createConnection(a.path)
        : credentials
          ? connectTls(tlsConnectOptions(a.host, a.port, this.options.tls?.serverName, credentials))
          : createConnection(a.port, a.host);
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
    // With TLS, usable once the handshake is done (QEMU's certificate checked).
    socket.once(credentials && a.type === 'tcp' ? 'secureConnect' : 'connect', () => {
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
