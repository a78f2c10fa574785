import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.ts';
import type { JournalOptions } from '../events/journal.ts';
import { QEMU_JSON_LIMITS } from '../json/streamer.ts';
import { LOG_LEVELS } from '../log.ts';
import { parseAddress, type Address } from '../net/address.ts';
import type { AuditOptions } from '../ops/audit-options.ts';
import type { MetricsOptions } from '../ops/http-server.ts';
import { copyPolicy, POLICY_PRESETS, PRESET_NAMES } from '../policy/presets.ts';
import { present } from '../util/assert.ts';
import type { BackoffConfig, EndpointConfig, LimitsConfig, LogConfig, MuxConfig, PolicyConfig, PolicyRuleConfig, SocketConfig, TimeoutsConfig, UpstreamConfig } from './config-types.ts';
import { boolean, fail, integer, keysOf, object, oneOf, optional, string, stringList } from './fields.ts';
import { readAuditOptions, readJournalOptions, readMetricsOptions } from './ops-fields.ts';
import {
  DEFAULTS,
  READ_ONLY_LIMITS,
  WHEN_LOCKED,
  defaultEndpoint,
  type BackoffOptions,
  type EndpointOptions,
  type LimitOptions,
  type LogOptions,
  type PolicyOptions,
  type PolicyRule,
  type SocketOptions,
  type TimeoutOptions,
  type UpstreamOptions,
} from './options.ts';

/** A configuration file, read and validated; what it leaves out stays default. */
export interface ConfigFile {
  upstream?: UpstreamOptions;
  /** Endpoints, complete (their limits default to the file's `limits`). */
  endpoints?: EndpointOptions[];
  /** Limits for endpoints the file does not describe (those from `--listen`). */
  limits: LimitOptions;
  window?: number;
  windowBytes?: number;
  totalInputBytes?: number;
  maxUpstreamMessage?: number;
  backoff?: BackoffOptions;
  timeouts?: TimeoutOptions;
  log?: Partial<LogOptions>;
  journal?: JournalOptions;
  audit?: AuditOptions;
  metrics?: MetricsOptions;
}

const MAX_WINDOW = 8;
const DAY_MS = 24 * 3600 * 1000;

/** Reads and validates a JSON configuration file. Throws ConfigError naming the bad field. */
export function loadConfigFile(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`${path}: cannot read: ${(e as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path}: not valid JSON: ${(e as Error).message}`);
  }
  try {
    return readConfig(value);
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`${path}: ${e.message}`);
    throw e;
  }
}

/** Validates a parsed configuration. Field paths in errors start at `config`. */
export function readConfig(value: unknown): ConfigFile {
  const p = 'config';
  const top = object(
    value,
    p,
    keysOf<MuxConfig>({ upstream: true, endpoints: true, limits: true, window: true, windowBytes: true, totalInputBytes: true, maxUpstreamMessage: true, backoff: true, timeouts: true, log: true, journal: true, audit: true, metrics: true }),
  );
  const limits = readLimits(top.limits, `${p}.limits`);
  const out: ConfigFile = { limits: { ...DEFAULTS.limits, ...limits } };
  const upstream = optional(top, 'upstream', p, readUpstream);
  if (upstream) out.upstream = upstream;
  const endpoints = optional(top, 'endpoints', p, (v, path) => readEndpoints(v, path, limits));
  if (endpoints) out.endpoints = endpoints;
  const window = optional(top, 'window', p, (v, path) => integer(v, path, 1, MAX_WINDOW));
  if (window !== undefined) out.window = window;
  const windowBytes = optional(top, 'windowBytes', p, (v, path) => integer(v, path, 64, QEMU_MAX_MESSAGE));
  if (windowBytes !== undefined) out.windowBytes = windowBytes;
  const totalInputBytes = optional(top, 'totalInputBytes', p, (v, path) => integer(v, path, 64 * 1024));
  if (totalInputBytes !== undefined) out.totalInputBytes = totalInputBytes;
  const maxUpstream = optional(top, 'maxUpstreamMessage', p, (v, path) => integer(v, path, 64 * 1024));
  if (maxUpstream !== undefined) out.maxUpstreamMessage = maxUpstream;
  const backoff = optional(top, 'backoff', p, readBackoff);
  if (backoff) out.backoff = backoff;
  const timeouts = optional(top, 'timeouts', p, readTimeouts);
  if (timeouts) out.timeouts = timeouts;
  const log = optional(top, 'log', p, readLog);
  if (log) out.log = log;
  const journal = optional(top, 'journal', p, readJournalOptions);
  if (journal) out.journal = journal;
  const audit = optional(top, 'audit', p, readAuditOptions);
  if (audit) out.audit = audit;
  const metrics = optional(top, 'metrics', p, readMetricsOptions);
  if (metrics) out.metrics = metrics;
  return out;
}

function address(v: unknown, path: string): Address {
  try {
    return parseAddress(string(v, path));
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    return fail(path, (e as Error).message);
  }
}

function readUpstream(v: unknown, path: string): UpstreamOptions {
  const u = object(v, path, keysOf<UpstreamConfig>({ connect: true, listen: true, spawn: true, takeover: true, onStop: true, powerdownTimeoutMs: true }));
  const modes = (['connect', 'listen', 'spawn'] as const).filter((m) => u[m] !== undefined);
  if (modes.length !== 1) fail(path, `give exactly one of 'connect', 'listen', 'spawn' (got ${modes.length === 0 ? 'none' : modes.join(' and ')})`);
  const mode = present(modes[0], 'the upstream mode');
  const misplaced = (key: string, belongs: string): void => {
    if (u[key] !== undefined && mode !== belongs) fail(`${path}.${key}`, `only applies with '${belongs}'`);
  };
  misplaced('takeover', 'connect');
  misplaced('onStop', 'spawn');
  misplaced('powerdownTimeoutMs', 'spawn');
  switch (mode) {
    case 'connect': {
      const a = address(u.connect, `${path}.connect`);
      const takeover = optional(u, 'takeover', path, boolean) ?? false;
      if (takeover && a.type !== 'unix') fail(`${path}.takeover`, 'needs a unix socket upstream');
      return { mode, address: a, takeover };
    }
    case 'listen':
      return { mode, address: address(u.listen, `${path}.listen`) };
    case 'spawn':
      return {
        mode,
        command: stringList(u.spawn, `${path}.spawn`, { nonEmpty: true }),
        onStop: optional(u, 'onStop', path, (x, q) => oneOf(x, q, ['quit', 'powerdown', 'leave'] as const)) ?? DEFAULTS.spawn.onStop,
        powerdownTimeoutMs: optional(u, 'powerdownTimeoutMs', path, (x, q) => integer(x, q, 0, DAY_MS)) ?? DEFAULTS.spawn.powerdownTimeoutMs,
      };
  }
}

const LIMIT_KEYS = keysOf<LimitsConfig>({ maxMessageSize: true, maxTokens: true, maxNesting: true, maxPendingRequests: true, maxOutputBuffer: true, maxCommandBytes: true, maxInputBytes: true });
/** QEMU reads at most this many bytes of token text in one message. */
const QEMU_MAX_MESSAGE = QEMU_JSON_LIMITS.maxMessageSize;

/** The limits a `limits` object sets; what it leaves out comes from elsewhere. */
function readLimits(v: unknown, path: string): Partial<LimitOptions> {
  if (v === undefined) return {};
  const l = object(v, path, LIMIT_KEYS);
  const out: Partial<LimitOptions> = {};
  const set = <K extends keyof LimitOptions>(key: K, min: number, max?: number): void => {
    const n = optional(l, key, path, (x, q) => integer(x, q, min, max));
    if (n !== undefined) out[key] = n;
  };
  // QEMU's own limits are the ceiling: above them QEMU would refuse what qmp-mux let through.
  set('maxMessageSize', 1024, QEMU_MAX_MESSAGE);
  set('maxTokens', 16, QEMU_JSON_LIMITS.maxTokens);
  set('maxNesting', 2, QEMU_JSON_LIMITS.maxNesting);
  set('maxPendingRequests', 1, 1_000_000);
  set('maxOutputBuffer', 64 * 1024);
  // QEMU refuses a message once its token text plus one reaches 64 MiB.
  set('maxCommandBytes', 64, QEMU_MAX_MESSAGE - 1);
  set('maxInputBytes', 1024);
  return out;
}

/**
 * An endpoint's limits: its own, else the file's, else those of its
 * policy's preset, else the defaults.
 */
function endpointLimits(own: Partial<LimitOptions>, file: Partial<LimitOptions>, policy: unknown): LimitOptions {
  const preset = typeof policy === 'string' ? policy : policy !== null && typeof policy === 'object' ? (policy as { preset?: unknown }).preset : undefined;
  return { ...DEFAULTS.limits, ...(preset === 'read-only' && READ_ONLY_LIMITS), ...file, ...own };
}

function readEndpoints(v: unknown, path: string, limits: Partial<LimitOptions>): EndpointOptions[] {
  if (!Array.isArray(v)) fail(path, 'expected an array of endpoints');
  if (v.length === 0) fail(path, 'must list at least one endpoint');
  const endpoints = v.map((item, i) => readEndpoint(item, `${path}[${i}]`, limits));
  const names = new Set<string>();
  const addresses = new Set<string>();
  endpoints.forEach((e, i) => {
    if (names.has(e.name)) fail(`${path}[${i}].name`, `'${e.name}' is used by another endpoint`);
    names.add(e.name);
    const key = e.address.type === 'unix' ? `unix:${e.address.path}` : `tcp:${e.address.host}:${e.address.port}`;
    if (addresses.has(key) && !(e.address.type === 'tcp' && e.address.port === 0)) fail(`${path}[${i}].listen`, `${key} is used by another endpoint`);
    addresses.add(key);
  });
  return endpoints;
}

function readEndpoint(v: unknown, path: string, limits: Partial<LimitOptions>): EndpointOptions {
  const e = object(
    v,
    path,
    keysOf<EndpointConfig>({ name: true, listen: true, socket: true, allowRemote: true, policy: true, events: true, maxClients: true, limits: true, negotiationTimeoutMs: true, eventSequence: true, whenLocked: true }),
  );
  const name = string(e.name, `${path}.name`);
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) fail(`${path}.name`, 'use letters, digits, and . _ - only');
  const out = defaultEndpoint(name, address(e.listen, `${path}.listen`));
  out.limits = endpointLimits(readLimits(e.limits, `${path}.limits`), limits, e.policy);
  const socket = optional(e, 'socket', path, readSocket);
  if (socket) {
    if (out.address.type !== 'unix') fail(`${path}.socket`, 'only applies to unix endpoints');
    out.socket = socket;
  }
  out.allowRemote = optional(e, 'allowRemote', path, boolean) ?? out.allowRemote;
  if (out.allowRemote && out.address.type !== 'tcp') fail(`${path}.allowRemote`, 'only applies to tcp endpoints');
  out.policy = optional(e, 'policy', path, readPolicy) ?? out.policy;
  out.events = optional(e, 'events', path, stringList) ?? out.events;
  out.maxClients = optional(e, 'maxClients', path, (x, q) => integer(x, q, 1, 1_000_000)) ?? out.maxClients;
  out.negotiationTimeoutMs = optional(e, 'negotiationTimeoutMs', path, (x, q) => integer(x, q, 0, DAY_MS)) ?? out.negotiationTimeoutMs;
  out.eventSequence = optional(e, 'eventSequence', path, boolean) ?? out.eventSequence;
  out.whenLocked = optional(e, 'whenLocked', path, (x, q) => oneOf(x, q, WHEN_LOCKED)) ?? out.whenLocked;
  return out;
}

function readSocket(v: unknown, path: string): SocketOptions {
  const s = object(v, path, keysOf<SocketConfig>({ mode: true, owner: true, group: true }));
  const mode = optional(s, 'mode', path, (x, q) => {
    if (typeof x !== 'string' || !/^0?[0-7]{3}$/.test(x)) fail(q, `expected an octal mode string such as "0660", got ${JSON.stringify(x)}`);
    return parseInt(x, 8);
  });
  const id = (x: unknown, q: string): string | number => (typeof x === 'number' ? integer(x, q, 0, 2 ** 32 - 2) : string(x, q));
  return { mode: mode ?? DEFAULTS.endpoint.socketMode, owner: optional(s, 'owner', path, id), group: optional(s, 'group', path, id) };
}

function readPolicy(v: unknown, path: string): PolicyOptions {
  if (typeof v === 'string') return copyPolicy(POLICY_PRESETS[oneOf(v, path, PRESET_NAMES)]);
  const p = object(v, path, keysOf<Exclude<PolicyConfig, string>>({ preset: true, allow: true, deny: true }));
  const preset = optional(p, 'preset', path, (x, q) => POLICY_PRESETS[oneOf(x, q, PRESET_NAMES)]);
  const allow = optional(p, 'allow', path, readRules);
  const deny = optional(p, 'deny', path, readRules) ?? [];
  if (!preset && !allow) fail(path, "give 'preset', 'allow', or both");
  const base = preset ? copyPolicy(preset) : { allow: [], deny: [] };
  return { allow: [...base.allow, ...(allow ?? [])], deny: [...base.deny, ...deny] };
}

/** Policy rules: command globs, or `{"command": GLOB, "arguments": {NAME: GLOB or [GLOB...]}}`. */
function readRules(v: unknown, path: string): PolicyRule[] {
  if (!Array.isArray(v)) fail(path, 'expected an array of rules: command globs, or {"command": GLOB, "arguments": {...}}');
  return v.map((item: unknown, i) => {
    const where = `${path}[${i}]`;
    if (typeof item === 'string') return commandGlob(item, where);
    const r = object(item, where, keysOf<Exclude<PolicyRuleConfig, string>>({ command: true, arguments: true }));
    const command = commandGlob(string(r.command, `${where}.command`), `${where}.command`);
    if (typeof r.arguments !== 'object' || r.arguments === null || Array.isArray(r.arguments)) {
      fail(`${where}.arguments`, 'expected an object of argument patterns, e.g. {"path": ["/machine/*"]}');
    }
    const entries = Object.entries(r.arguments).filter(([name]) => !name.startsWith('$comment'));
    if (entries.length === 0) fail(`${where}.arguments`, 'give at least one argument pattern (a rule on the name alone is the string)');
    const args = entries.map(([name, patterns]): [string, string[]] => {
      if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(name)) fail(`${where}.arguments`, `'${name}': argument names are letters, digits, _ -, with . between nested names`);
      const q = `${where}.arguments.${name}`;
      return [name, typeof patterns === 'string' ? [string(patterns, q)] : stringList(patterns, q, { nonEmpty: true })];
    });
    return { command, arguments: Object.fromEntries(args) };
  });
}

function commandGlob(pattern: string, path: string): string {
  if (!/^[A-Za-z0-9_.*-]+$/.test(pattern)) fail(path, `'${pattern}': command names are letters, digits, . _ - (and * in patterns)`);
  return pattern;
}

function readBackoff(v: unknown, path: string): BackoffOptions {
  const b = object(v, path, keysOf<BackoffConfig>({ initialMs: true, maxMs: true }));
  const initialMs = optional(b, 'initialMs', path, (x, q) => integer(x, q, 1, DAY_MS)) ?? DEFAULTS.backoff.initialMs;
  const maxMs = optional(b, 'maxMs', path, (x, q) => integer(x, q, 1, DAY_MS)) ?? Math.max(DEFAULTS.backoff.maxMs, initialMs);
  if (maxMs < initialMs) fail(`${path}.maxMs`, `must not be less than initialMs (${initialMs})`);
  return { initialMs, maxMs };
}

function readTimeouts(v: unknown, path: string): TimeoutOptions {
  const t = object(v, path, keysOf<TimeoutsConfig>({ clientGreetingMs: true, upstreamGreetingMs: true, stallMs: true, shutdownMs: true, closeMs: true }));
  const ms = (key: keyof TimeoutOptions, min: number): number => optional(t, key, path, (x, q) => integer(x, q, min, DAY_MS)) ?? DEFAULTS.timeouts[key];
  return {
    clientGreetingMs: ms('clientGreetingMs', 0),
    upstreamGreetingMs: ms('upstreamGreetingMs', 1),
    stallMs: ms('stallMs', 1),
    shutdownMs: ms('shutdownMs', 0),
    closeMs: ms('closeMs', 1),
  };
}

function readLog(v: unknown, path: string): Partial<LogOptions> {
  const l = object(v, path, keysOf<LogConfig>({ level: true, format: true, trace: true }));
  const out: Partial<LogOptions> = {};
  const level = optional(l, 'level', path, (x, q) => oneOf(x, q, LOG_LEVELS));
  if (level) out.level = level;
  const format = optional(l, 'format', path, (x, q) => oneOf(x, q, ['text', 'json'] as const));
  if (format) out.format = format;
  const trace = optional(l, 'trace', path, boolean);
  if (trace !== undefined) out.trace = trace;
  return out;
}
