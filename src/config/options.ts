import { QEMU_JSON_LIMITS } from '../json/streamer.ts';
import type { LogFormat, LogLevel } from '../log.ts';
import type { MetricsOptions } from '../ops/metrics-options.ts';
import type { AuditOptions, AuditRecord, JournalOptions } from '../ops/options.ts';
import type { Address } from '../net/address.ts';
import { copyPolicy, POLICY_PRESETS } from '../policy/presets.ts';

/** What a SIGTERM/SIGINT to qmp-mux does to a QEMU it started. */
export type StopPolicy = 'quit' | 'powerdown' | 'leave';

/** Where QEMU is. */
export type UpstreamOptions =
  /** Dial QEMU's QMP server socket, retrying with backoff. */
  | {
      mode: 'connect';
      address: Address;
      /** Move QEMU's unix socket aside and serve clients at its path (see README). */
      takeover: boolean;
    }
  /** Listen; QEMU connects (`-chardev socket,...,reconnect=1`). */
  | { mode: 'listen'; address: Address }
  /** Start QEMU with these arguments plus a private QMP socket. */
  | {
      mode: 'spawn';
      command: string[];
      onStop: StopPolicy;
      /** With `powerdown`: how long the guest gets before `quit`, ms. */
      powerdownTimeoutMs: number;
    };

/**
 * A command rule: a glob of command names (`*` matches any run of
 * characters), alone or with patterns for the command's arguments.
 */
export type PolicyRule = string | ArgumentRule;

/** A rule that matches a command only when its arguments match too. */
export interface ArgumentRule {
  /** Glob of command names. */
  command: string;
  /**
   * Per argument (a dotted path reaches into objects: `file.driver`), globs
   * of which one must match. A string argument matches as itself, a number
   * as QEMU prints it, a boolean as `true`/`false`; an absent argument, an
   * object, an array or null matches none.
   */
  arguments: Record<string, string[]>;
}

/**
 * Which commands an endpoint lets through: a command must match an allow
 * rule and no deny rule. A `transaction` is checked action by action too.
 */
export interface PolicyOptions {
  allow: PolicyRule[];
  deny: PolicyRule[];
}

export interface SocketOptions {
  /** File mode of a unix socket. */
  mode: number;
  /** Owner (user name or uid) of a unix socket; unchanged when undefined. */
  owner: string | number | undefined;
  /** Group (group name or gid) of a unix socket; unchanged when undefined. */
  group: string | number | undefined;
}

export interface LimitOptions {
  /**
   * Bytes of one client message (token text), as QEMU counts them: past it
   * the client gets QEMU's own limit error. At most QEMU's 64 MiB. It bounds
   * what a message still being sent holds in qmp-mux.
   */
  maxMessageSize: number;
  /** Tokens in one client message; QEMU's 2 Mi by default. */
  maxTokens: number;
  /** Nesting of one client message; QEMU's 1024 by default (and at most). */
  maxNesting: number;
  /** Requests of one client not yet answered before qmp-mux stops reading from it. */
  maxPendingRequests: number;
  /** Bytes written to one client and not yet taken by it before the client is disconnected. */
  maxOutputBuffer: number;
  /**
   * Bytes of one command as qmp-mux sends it to QEMU. QEMU reads its monitor
   * one byte per system call and reads nothing else meanwhile, so a
   * command's bytes are time every other client waits; larger commands are
   * refused.
   */
  maxCommandBytes: number;
  /**
   * Bytes of one client's input qmp-mux holds: its commands waiting for
   * their turn to QEMU, plus a message still being sent. Past it the client
   * is not read until its commands have gone to QEMU.
   */
  maxInputBytes: number;
}

export interface EndpointOptions {
  /** Shown in logs and in the client list. */
  name: string;
  address: Address;
  /** For unix sockets. */
  socket: SocketOptions;
  /** A TCP endpoint on a non-loopback address is refused unless this is set. */
  allowRemote: boolean;
  policy: PolicyOptions;
  /** Glob patterns of event names this endpoint's clients receive. */
  events: string[];
  /** Clients connected at once; beyond, a new client gets an error and is closed. */
  maxClients: number;
  limits: LimitOptions;
  /** A client that has not negotiated this long after its greeting is closed, ms; 0 never. */
  negotiationTimeoutMs: number;
  /** Add the journal's sequence number to each live event this endpoint's clients receive. */
  eventSequence: boolean;
}

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

export interface BackoffOptions {
  /** First retry delay, ms. */
  initialMs: number;
  /** Longest retry delay, ms. */
  maxMs: number;
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

/**
 * Limits for endpoints whose policy is the `read-only` preset: their
 * clients send queries, which are small. QEMU reads a 2 KiB command in
 * about 30 ms where it reads 14 µs a byte (the slowest machine measured).
 */
export const READ_ONLY_LIMITS: Readonly<Pick<LimitOptions, 'maxCommandBytes' | 'maxMessageSize' | 'maxInputBytes'>> = Object.freeze({
  maxCommandBytes: 2 * 1024,
  maxMessageSize: 16 * 1024,
  maxInputBytes: 64 * 1024,
});

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
  /**
   * A command's bytes are paid by every client queued behind it (about
   * 1 s for 64 KiB where QEMU reads 14 µs a byte); no QMP command needs
   * more. A message four times that size could hardly make a command that
   * fits, so qmp-mux does not hold one: a message still being sent costs
   * up to about 21 times its size (its text, and nine bytes a token).
   */
  limits: Object.freeze({
    ...QEMU_JSON_LIMITS,
    maxMessageSize: 256 * 1024,
    maxPendingRequests: 256,
    maxOutputBuffer: 16 * 1024 * 1024,
    maxCommandBytes: 64 * 1024,
    maxInputBytes: 1024 * 1024,
  }),
  endpoint: Object.freeze({
    socketMode: 0o600,
    allowRemote: false,
    maxClients: 64,
    /**
     * A connection that has not negotiated after 30 s is closed: clients
     * negotiate as soon as they are greeted, and 30 s leaves a person
     * typing `qmp_capabilities` into socat time to, while a connection that
     * sends nothing gives its place on the endpoint back.
     */
    negotiationTimeoutMs: 30_000,
    eventSequence: false,
  }),
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

/** An endpoint with every default, at `address`. */
export function defaultEndpoint(name: string, address: Address): EndpointOptions {
  return {
    name,
    address,
    socket: { mode: DEFAULTS.endpoint.socketMode, owner: undefined, group: undefined },
    allowRemote: DEFAULTS.endpoint.allowRemote,
    policy: copyPolicy(POLICY_PRESETS.all),
    events: ['*'],
    maxClients: DEFAULTS.endpoint.maxClients,
    limits: { ...DEFAULTS.limits },
    negotiationTimeoutMs: DEFAULTS.endpoint.negotiationTimeoutMs,
    eventSequence: DEFAULTS.endpoint.eventSequence,
  };
}
