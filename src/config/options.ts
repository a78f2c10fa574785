import { ENDPOINT_DEFAULTS, LIMIT_DEFAULTS, type EndpointOptions } from '../downstream/endpoint-options.ts';
import type { JournalOptions } from '../events/journal.ts';
import type { LogFormat, LogLevel } from '../log.ts';
import type { Address } from '../net/address.ts';
import type { AuditOptions, AuditRecord } from '../ops/audit-options.ts';
import type { MetricsOptions } from '../ops/http-server.ts';
import type { BackoffOptions } from '../upstream/backoff.ts';
import type { UpstreamOptions } from '../upstream/source.ts';
import type { StopPolicy } from '../upstream/source.ts';

export { defaultEndpoint, READ_ONLY_LIMITS, WHEN_LOCKED, type EndpointOptions, type LimitOptions, type WhenLocked } from '../downstream/endpoint-options.ts';
export type { PolicyOptions, PolicyRule } from '../policy/policy.ts';
export type { SocketOptions } from '../net/unix-socket.ts';
export type { BackoffOptions } from '../upstream/backoff.ts';
export type { UpstreamOptions } from '../upstream/source.ts';
export type { StopPolicy } from '../upstream/source.ts';

export interface TimeoutOptions {
  /** How long a client waits for its greeting while QEMU is away, ms. */
  clientGreetingMs: number;
  /** How long QEMU may take to greet after connecting, ms. */
  upstreamGreetingMs: number;
  /**
   * How long QEMU may leave a command unanswered before qmp-mux reports it
   * stalled (a log line, and `/readyz` not ready until it answers), ms.
   */
  stallMs: number;
  /** On SIGTERM/SIGINT, how long pending replies may take to reach clients, ms. */
  shutdownMs: number;
  /**
   * How long a connection qmp-mux ends may take to close before it is
   * destroyed (a peer that does not read its last replies, or never closes), ms.
   */
  closeMs: number;
}

export interface LogOptions {
  level: LogLevel;
  format: LogFormat;
  /** Log every message with its client and direction. */
  trace: boolean;
}

/** Everything qmp-mux runs with, validated and complete. */
export interface Options {
  upstream: UpstreamOptions;
  endpoints: EndpointOptions[];
  /** In-band commands in flight to QEMU at once. */
  window: number;
  /**
   * Bytes of in-band commands in flight to QEMU at once (a larger command
   * goes alone): what a client's command may find ahead of it in QEMU's
   * input.
   */
  windowBytes: number;
  /** Bytes of input held for all clients together (see `LimitOptions.maxInputBytes`). */
  totalInputBytes: number;
  /** Bytes of one message from QEMU (query-qmp-schema is about 207 KB). */
  maxUpstreamMessage: number;
  backoff: BackoffOptions;
  timeouts: TimeoutOptions;
  log: LogOptions;
  /** The ring of recent events `query-events` answers from. */
  journal: JournalOptions;
  /** The audit log, if one is kept. */
  audit: AuditOptions | undefined;
  /** The HTTP listener for metrics and probes, if any. */
  metrics: MetricsOptions | undefined;
}

/** The QEMU qmp-mux starts when no upstream is given (`npm start`). */
export const EMBEDDED_QEMU: readonly string[] = ['qemu-system-x86_64', '-machine', 'none', '-nodefaults', '-display', 'none'];

/** Where clients connect when no endpoint is given. */
export const DEFAULT_LISTEN: Address = { type: 'unix', path: 'qmp-mux.sock' };

/**
 * QEMU queues up to 8 in-band commands per monitor and stops reading when
 * the 8th arrives; 7 in flight keeps it reading, so `exec-oob` always gets
 * through (QEMU's include/monitor/monitor.h, QMP_REQ_QUEUE_LEN_MAX).
 */
const DEFAULT_WINDOW = 7;

/** Every default in one place; the README and config/example.json document them. */
export const DEFAULTS = Object.freeze({
  window: DEFAULT_WINDOW,
  /**
   * 2 KiB in flight keeps QEMU reading while replies make their way back
   * (a round trip through qmp-mux is a fraction of a millisecond; 2 KiB is
   * 3 to 30 ms of QEMU's reading), and no more than one read-only client's
   * command is ever ahead of another client's.
   */
  windowBytes: 2 * 1024,
  totalInputBytes: 64 * 1024 * 1024,
  maxUpstreamMessage: 64 * 1024 * 1024,
  backoff: Object.freeze({ initialMs: 50, maxMs: 5000 }),
  timeouts: Object.freeze({ clientGreetingMs: 30_000, upstreamGreetingMs: 10_000, stallMs: 10_000, shutdownMs: 5000, closeMs: 2000 }),
  log: Object.freeze({ level: 'info' as LogLevel, format: 'text' as LogFormat, trace: false }),
  limits: LIMIT_DEFAULTS,
  endpoint: ENDPOINT_DEFAULTS,
  /**
   * The journal keeps 10,000 events: QEMU emits a handful per second even
   * when busy (bursts of a few hundred during migration or block jobs), so
   * that covers far longer than a client takes to restart; its events are
   * 100 to 300 bytes, so 4 MiB is reached only by unusually large events,
   * and a whole journal in one `query-events` reply stays well under a
   * client's output limit (16 MiB).
   */
  journal: Object.freeze({ maxEvents: 10_000, maxBytes: 4 * 1024 * 1024 }),
  /**
   * The audit log leaves arguments out unless asked (secrets), rotates at
   * 64 MiB keeping 5 files (at most 384 MiB in all), and buffers 4 MiB
   * (some 20,000 lines) for a slow disk.
   */
  audit: Object.freeze({
    record: 'changes' as AuditRecord,
    arguments: false,
    maxEntryBytes: 64 * 1024,
    rotate: Object.freeze({ maxBytes: 64 * 1024 * 1024, keep: 5 }),
    maxBufferedBytes: 4 * 1024 * 1024,
  }),
  spawn: Object.freeze({ onStop: 'quit' as StopPolicy, powerdownTimeoutMs: 30_000 }),
});
