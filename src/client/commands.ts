import type { JsonNumber } from '../json/value.ts';
import type { LockMode } from '../qmp/extensions.ts';
import type { QmpInput, QmpObject, QmpValue } from './values.ts';

/**
 * Types for common commands, so `client.execute('query-status')` resolves
 * with a `StatusInfo` and checks its arguments: QEMU 7.2's schema
 * (query-qmp-schema; the test suite compares each against a real QEMU's),
 * and qmp-mux's own commands. A command not listed here takes
 * `QmpArguments` and resolves with a `QmpValue`. More can be added by
 * declaration merging:
 *
 *     declare module 'qmp-mux' {
 *       interface QmpCommands {
 *         'query-uuid': { arguments: NoArguments; returns: { UUID: string } };
 *       }
 *     }
 *
 * Values follow the library's rule for numbers (see `QmpValue`): QEMU's
 * 64-bit integers that can pass 2^53 (sizes, byte counts, offsets) are
 * `number | bigint`; smaller ones (8 and 32 bits, versions, indexes) are
 * `number`. Arguments take integers as `number`, `bigint` or `JsonNumber`.
 */
export interface QmpCommands {
  'query-status': { arguments: NoArguments; returns: StatusInfo };
  'query-version': { arguments: NoArguments; returns: VersionInfo };
  'query-name': { arguments: NoArguments; returns: { name?: string } };
  'query-commands': { arguments: NoArguments; returns: { name: string }[] };
  'query-kvm': { arguments: NoArguments; returns: { enabled: boolean; present: boolean } };
  'query-block-jobs': { arguments: NoArguments; returns: BlockJobInfo[] };
  'query-migrate-parameters': { arguments: NoArguments; returns: MigrationParameters };
  'migrate-set-parameters': { arguments: MigrateSetParameters; returns: NoReturn };
  stop: { arguments: NoArguments; returns: NoReturn };
  cont: { arguments: NoArguments; returns: NoReturn };
  system_reset: { arguments: NoArguments; returns: NoReturn };
  system_powerdown: { arguments: NoArguments; returns: NoReturn };
  quit: { arguments: NoArguments; returns: NoReturn };
  device_add: {
    /** The device's own properties besides these. */
    arguments: { driver: string; bus?: string | undefined; id?: string | undefined; readonly [property: string]: QmpInput | undefined };
    returns: NoReturn;
  };
  device_del: { arguments: { id: string }; returns: NoReturn };
  'human-monitor-command': { arguments: { 'command-line': string; 'cpu-index'?: Int | undefined }; returns: string };
  'qom-get': { arguments: { path: string; property: string }; returns: QmpValue };
  'qom-set': { arguments: { path: string; property: string; value: QmpInput }; returns: NoReturn };
  'qom-list': { arguments: { path: string }; returns: ObjectPropertyInfo[] };
  '__org.qmp-mux_query-proxy': { arguments: NoArguments; returns: MuxProxyInfo };
  '__org.qmp-mux_query-clients': { arguments: NoArguments; returns: MuxClientInfo[] };
  '__org.qmp-mux_query-events': { arguments: { since?: Int | undefined; events?: readonly string[] | undefined }; returns: MuxEventsInfo };
  '__org.qmp-mux_set-events': { arguments: { events: readonly string[] }; returns: NoReturn };
  '__org.qmp-mux_lock': {
    arguments: { mode: LockMode; 'wait-ms'?: Int | undefined; 'lease-ms'?: Int | undefined; reason?: string | undefined };
    returns: { mode: LockMode; 'lease-ms': number };
  };
  '__org.qmp-mux_unlock': { arguments: NoArguments; returns: NoReturn };
  /** `{}` when no lock is held. */
  '__org.qmp-mux_query-lock': { arguments: NoArguments; returns: MuxLockInfo | NoReturn };
}

/** The arguments a command of `QmpCommands` takes; any other, any values the library can send (members left `undefined` are not sent). */
export type ArgumentsOf<C extends string> = C extends keyof QmpCommands ? QmpCommands[C]['arguments'] : { readonly [name: string]: QmpInput | undefined };

/** What a command resolves with: its type in `QmpCommands`, else any `QmpValue`. */
export type ReturnOf<C extends string> = C extends keyof QmpCommands ? QmpCommands[C]['returns'] : QmpValue;

/** `execute`'s arguments after the command: optional unless the command requires some. */
export type ExecuteArguments<C extends string> = {} extends ArgumentsOf<C> ? [args?: ArgumentsOf<C>] : [args: ArgumentsOf<C>];

/** A command that takes no arguments. */
export type NoArguments = { readonly [name: string]: never };
/** The empty object a command returns when it has nothing to say. */
export type NoReturn = { [name: string]: never };
/** An integer argument, sent digit for digit. */
export type Int = number | bigint | JsonNumber;
/** A 64-bit integer QEMU returns that can pass 2^53 (see `QmpValue`). */
export type Int64 = number | bigint;

export type RunState =
  | 'debug'
  | 'inmigrate'
  | 'internal-error'
  | 'io-error'
  | 'paused'
  | 'postmigrate'
  | 'prelaunch'
  | 'finish-migrate'
  | 'restore-vm'
  | 'running'
  | 'save-vm'
  | 'shutdown'
  | 'suspended'
  | 'watchdog'
  | 'guest-panicked'
  | 'colo';

export type StatusInfo = { running: boolean; singlestep: boolean; status: RunState };

export type VersionInfo = { qemu: { major: number; minor: number; micro: number }; package: string };

export type BlockJobInfo = {
  type: string;
  device: string;
  len: Int64;
  offset: Int64;
  busy: boolean;
  paused: boolean;
  speed: Int64;
  'io-status': 'ok' | 'failed' | 'nospace';
  ready: boolean;
  status: 'undefined' | 'created' | 'running' | 'paused' | 'ready' | 'standby' | 'waiting' | 'pending' | 'aborting' | 'concluded' | 'null';
  'auto-finalize': boolean;
  'auto-dismiss': boolean;
  error?: string;
};

export type ObjectPropertyInfo = { name: string; type: string; description?: string; 'default-value'?: QmpValue };

export type MultiFDCompression = 'none' | 'zlib' | 'zstd';

export type BitmapMigrationNodeAlias = {
  'node-name': string;
  alias: string;
  bitmaps: { name: string; alias: string; transform?: { persistent?: boolean } }[];
};

/** What `query-migrate-parameters` returns (QEMU 7.2): each member only where it applies. */
export type MigrationParameters = {
  'announce-initial'?: Int64;
  'announce-max'?: Int64;
  'announce-rounds'?: Int64;
  'announce-step'?: Int64;
  'compress-level'?: number;
  'compress-threads'?: number;
  'compress-wait-thread'?: boolean;
  'decompress-threads'?: number;
  'throttle-trigger-threshold'?: number;
  'cpu-throttle-initial'?: number;
  'cpu-throttle-increment'?: number;
  'cpu-throttle-tailslow'?: boolean;
  'tls-creds'?: string;
  'tls-hostname'?: string;
  'tls-authz'?: string;
  'max-bandwidth'?: Int64;
  'downtime-limit'?: Int64;
  'x-checkpoint-delay'?: number;
  'block-incremental'?: boolean;
  'multifd-channels'?: number;
  'xbzrle-cache-size'?: Int64;
  'max-postcopy-bandwidth'?: Int64;
  'max-cpu-throttle'?: number;
  'multifd-compression'?: MultiFDCompression;
  'multifd-zlib-level'?: number;
  'multifd-zstd-level'?: number;
  'block-bitmap-mapping'?: BitmapMigrationNodeAlias[];
};

/** The arguments of `migrate-set-parameters` (QEMU 7.2): those given are set. */
export type MigrateSetParameters = {
  readonly [P in Exclude<keyof MigrationParameters, `tls-${string}` | 'block-bitmap-mapping'>]?: (MigrationParameters[P] extends Int64 | undefined ? Int : MigrationParameters[P]) | undefined;
} & {
  /** `null` or `""` resets them. */
  readonly 'tls-creds'?: string | null | undefined;
  readonly 'tls-hostname'?: string | null | undefined;
  readonly 'tls-authz'?: string | null | undefined;
  readonly 'block-bitmap-mapping'?: readonly BitmapMigrationNodeAlias[] | undefined;
};

/** `__org.qmp-mux_query-proxy` (see the README). */
export type MuxProxyInfo = {
  version: string;
  uptime: number;
  upstream: { state: 'connecting' | 'greeting' | 'negotiating' | 'ready' | 'stopped'; mode: 'connect' | 'listen' | 'spawn'; qemu?: VersionInfo; 'oldest-command-ms': number };
  clients: number;
  'last-event': number;
  'queued-bytes': number;
  counters: {
    commands: number;
    events: number;
    errors: number;
    refused: number;
    'too-large': number;
    /** Commands refused, or not run, because of another client's lock. */
    locked: number;
    'too-large-from-qemu': number;
    'reply-mismatches': number;
    /** By reason: `closed`, `finished`, `slow-reader`... */
    disconnects: { [reason: string]: number };
  };
  audit?: { written: number; dropped: number; 'buffered-bytes': number };
  /** While a lock is held or being granted. */
  lock?: Omit<MuxLockInfo, 'mine'>;
};

/** qmp-mux's lock, as `__org.qmp-mux_query-lock` answers (see the README, "Locks"). */
export type MuxLockInfo = {
  /** The asking client holds it. */
  mine: boolean;
  mode: LockMode;
  /** The holder, as in `query-clients`. */
  client: number;
  endpoint: string;
  peer: string;
  reason?: string;
  since: string;
  /** False while others' earlier commands are still being answered. */
  granted: boolean;
  'lease-ms': number;
  'lease-left-ms': number;
  /** The clients waiting for it, in order. */
  waiting: number[];
  /** Other clients' commands waiting behind it. */
  'waiting-commands': number;
};

/** One entry of `__org.qmp-mux_query-clients`. */
export type MuxClientInfo = {
  client: number;
  endpoint: string;
  peer: string;
  'connected-since': string;
  negotiated: boolean;
  commands: number;
  'in-flight': number;
  'bytes-queued': number;
  events: string[];
  /** It holds qmp-mux's lock (or is being granted it), or waits for it. */
  lock?: 'holds' | 'waits';
  /** Its commands waiting behind another client's lock, when there are some. */
  'waiting-commands'?: number;
};

/** What a lock asks of qmp-mux besides its mode (see `__org.qmp-mux_lock`). */
export interface LockOptions {
  /** How long to wait for a lock another client holds, ms; default 0: fail at once, the error naming the holder. */
  waitMs?: number;
  /** The lock ends if this client sends nothing for this long, ms (qmp-mux's default 60000, at most 3600000). */
  leaseMs?: number;
  /** Shown to the clients the lock turns away, in `query-clients` and in the audit log. */
  reason?: string;
}

/** `__org.qmp-mux_query-events`: the kept events after `since`, each as QEMU sent it, with its number. */
export type MuxEventsInfo = { dropped: boolean; last: number; events: { event: QmpObject & { event: string }; seq: number }[] };
