import type { Address } from '../net/address.ts';
import type { LogFormat, LogLevel } from '../log.ts';

/** Where QEMU is. */
export type UpstreamOptions =
  /** Dial QEMU's QMP server socket, retrying with backoff. */
  | { mode: 'connect'; address: Address }
  /** Start QEMU with these arguments plus a private QMP socket. */
  | { mode: 'spawn'; command: string[] };

export interface EndpointOptions {
  /** Shown in logs. */
  name: string;
  address: Address;
}

export interface LimitOptions {
  /** Bytes of one client message (token text); QEMU's limit, 64 MiB, by default. */
  maxMessageSize: number;
  /** Tokens in one client message; QEMU's 2 Mi by default. */
  maxTokens: number;
  /** Nesting of one client message; QEMU's 1024 by default. */
  maxNesting: number;
  /** Requests of one client not yet answered before qmp-mux stops reading from it. */
  maxPendingRequests: number;
  /** Bytes written to one client and not yet taken by it before the client is disconnected. */
  maxOutputBuffer: number;
  /** Bytes of one message from QEMU (query-qmp-schema is about 207 KB). */
  maxUpstreamMessage: number;
}

export interface BackoffOptions {
  /** First retry delay, ms. */
  initialMs: number;
  /** Longest retry delay, ms. */
  maxMs: number;
}

export interface Options {
  upstream: UpstreamOptions;
  endpoints: EndpointOptions[];
  /** In-band commands in flight to QEMU at once. */
  window: number;
  limits: LimitOptions;
  backoff: BackoffOptions;
  log: { level: LogLevel; format: LogFormat; trace: boolean };
}

/** The QEMU qmp-mux starts when no upstream is given (`npm start`). */
export const EMBEDDED_QEMU = ['qemu-system-x86_64', '-machine', 'none', '-nodefaults', '-display', 'none'];

/** Where clients connect when no endpoint is given. */
export const DEFAULT_LISTEN: Address = { type: 'unix', path: 'qmp-mux.sock' };

export const DEFAULT_LIMITS: Readonly<LimitOptions> = Object.freeze({
  maxMessageSize: 64 * 1024 * 1024,
  maxTokens: 2 * 1024 * 1024,
  maxNesting: 1024,
  maxPendingRequests: 256,
  maxOutputBuffer: 16 * 1024 * 1024,
  maxUpstreamMessage: 64 * 1024 * 1024,
});

/**
 * QEMU queues up to 8 in-band commands per monitor and stops reading when
 * the 8th arrives; 7 in flight keeps it reading, so `exec-oob` always gets
 * through (QEMU's include/monitor/monitor.h, QMP_REQ_QUEUE_LEN_MAX).
 */
export const DEFAULT_WINDOW = 7;

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({ initialMs: 50, maxMs: 5000 });
