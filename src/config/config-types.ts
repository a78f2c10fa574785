import type { LogFormat, LogLevel } from '../log.ts';
import type { AuditConfig, JournalConfig, MetricsConfig } from './ops-fields.ts';
import type { PresetName } from '../policy/presets.ts';
import type { Commented } from './fields.ts';
import type { StopPolicy, WhenLocked } from './options.ts';

/**
 * What a configuration file holds, as TypeScript types: the object
 * `startMux` takes, and the one the file reader accepts (its readers list
 * their keys from these types, and `--print-config` writes one), so a
 * misspelt key or a value of the wrong kind fails to compile rather than
 * at start. config/example.json shows every field with its default; the
 * reader still checks values (ranges, addresses) at run time.
 */

/** A socket address: `unix:PATH`, or `tcp:HOST:PORT` (`tcp:[::1]:PORT`; port 0 picks a free one). */
export type AddressText = `unix:${string}` | `tcp:${string}`;

/** Where QEMU is: exactly one of `connect`, `listen`, `spawn`. */
export type UpstreamConfig =
  /** Dial QEMU's QMP socket; `takeover` serves clients at its (unix) path instead. */
  | ({ connect: AddressText; takeover?: boolean; listen?: never; spawn?: never; onStop?: never; powerdownTimeoutMs?: never } & Commented)
  /** Listen; QEMU connects (`-chardev socket,...,reconnect=1`). */
  | ({ listen: AddressText; connect?: never; spawn?: never; takeover?: never; onStop?: never; powerdownTimeoutMs?: never } & Commented)
  /** Start QEMU with this command (a private QMP socket added); what stopping does to it (default `quit`, 30000 ms for `powerdown`). */
  | ({ spawn: readonly string[]; onStop?: StopPolicy; powerdownTimeoutMs?: number; connect?: never; listen?: never; takeover?: never } & Commented);

/** A rule of a policy: a glob of command names, or one with globs for arguments (a dotted name reaches into objects). */
export type PolicyRuleConfig = string | ({ command: string; arguments: { readonly [name: string]: string | readonly string[] } } & Commented);

/** An endpoint's policy: a preset's name, or a preset and rules of its own (`allow` then `deny`). */
export type PolicyConfig = PresetName | ({ preset?: PresetName; allow?: readonly PolicyRuleConfig[]; deny?: readonly PolicyRuleConfig[] } & Commented);

/** Limits on each client (see config/example.json for the defaults and the read-only preset's). */
export interface LimitsConfig extends Commented {
  maxMessageSize?: number;
  maxTokens?: number;
  maxNesting?: number;
  maxPendingRequests?: number;
  maxOutputBuffer?: number;
  maxCommandBytes?: number;
  maxInputBytes?: number;
}

/** A unix socket's mode (octal text, `"0660"`), owner and group (names or ids). */
export interface SocketConfig extends Commented {
  mode?: string;
  owner?: string | number;
  group?: string | number;
}

/** Where clients connect, and what they may do there. */
export interface EndpointConfig extends Commented {
  /** Letters, digits, `.`, `_`, `-`: in logs, metrics and the client list. */
  name: string;
  listen: AddressText;
  socket?: SocketConfig;
  /** Let a TCP endpoint listen on an address that is not loopback. */
  allowRemote?: boolean;
  policy?: PolicyConfig;
  /** Globs of the event names its clients receive. */
  events?: readonly string[];
  maxClients?: number;
  limits?: LimitsConfig;
  /** ms; 0: none. */
  negotiationTimeoutMs?: number;
  /** Add the journal's number to each live event. */
  eventSequence?: boolean;
  /** What its commands do when another client's lock holds them back. */
  whenLocked?: WhenLocked;
}

/** Retry delays toward QEMU, ms. */
export interface BackoffConfig extends Commented {
  initialMs?: number;
  maxMs?: number;
}

/** ms each. */
export interface TimeoutsConfig extends Commented {
  clientGreetingMs?: number;
  upstreamGreetingMs?: number;
  stallMs?: number;
  shutdownMs?: number;
  closeMs?: number;
}

export interface LogConfig extends Commented {
  level?: LogLevel;
  format?: LogFormat;
  trace?: boolean;
}

/** A configuration: what a configuration file holds, every member optional but the ones inside that name things. */
export interface MuxConfig extends Commented {
  upstream?: UpstreamConfig;
  endpoints?: readonly EndpointConfig[];
  /** Limits for every endpoint that does not set its own. */
  limits?: LimitsConfig;
  window?: number;
  windowBytes?: number;
  totalInputBytes?: number;
  maxUpstreamMessage?: number;
  backoff?: BackoffConfig;
  timeouts?: TimeoutsConfig;
  log?: LogConfig;
  journal?: JournalConfig;
  audit?: AuditConfig;
  metrics?: MetricsConfig;
}
