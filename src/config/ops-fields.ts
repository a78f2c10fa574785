import { AddressError } from '../errors.ts';
import type { JournalOptions } from '../events/journal.ts';
import { parseAddress } from '../net/address.ts';
import { AUDIT_RECORD_LEVELS, type AuditOptions, type AuditRecord, type AuditRotateOptions } from '../ops/audit-options.ts';
import type { MetricsOptions, TcpAddress } from '../ops/http-server.ts';
import { boolean, fail, integer, keysOf, object, oneOf, optional, string, type Commented } from './fields.ts';
import { DEFAULTS } from './options.ts';

/** The configuration file's `journal`, `audit` and `metrics` objects, read and checked. */

/** The configuration file's `journal` (defaults in config/example.json). */
export interface JournalConfig extends Commented {
  maxEvents?: number;
  maxBytes?: number;
}

/** The configuration file's `audit` (defaults in config/example.json). */
export interface AuditConfig extends Commented {
  path: string;
  record?: AuditRecord;
  arguments?: boolean;
  maxEntryBytes?: number;
  rotate?: { maxBytes?: number; keep?: number } & Commented;
  maxBufferedBytes?: number;
}

const GIB = 1024 * 1024 * 1024;

/** Reads the configuration file's `journal` object. */
export function readJournalOptions(v: unknown, path: string): JournalOptions {
  const j = object(v, path, keysOf<JournalConfig>({ maxEvents: true, maxBytes: true }));
  const d = DEFAULTS.journal;
  return {
    maxEvents: optional(j, 'maxEvents', path, (x, q) => integer(x, q, 0, 10_000_000)) ?? d.maxEvents,
    maxBytes: optional(j, 'maxBytes', path, (x, q) => integer(x, q, 0, GIB)) ?? d.maxBytes,
  };
}

/** Reads the configuration file's `audit` object (`path` is required). */
export function readAuditOptions(v: unknown, path: string): AuditOptions {
  const a = object(v, path, keysOf<AuditConfig>({ path: true, record: true, arguments: true, maxEntryBytes: true, rotate: true, maxBufferedBytes: true }));
  const d = DEFAULTS.audit;
  const out: AuditOptions = {
    path: string(a.path, `${path}.path`),
    record: optional(a, 'record', path, (x, q) => oneOf(x, q, AUDIT_RECORD_LEVELS)) ?? d.record,
    arguments: optional(a, 'arguments', path, boolean) ?? d.arguments,
    maxEntryBytes: optional(a, 'maxEntryBytes', path, (x, q) => integer(x, q, 1024, 64 * 1024 * 1024)) ?? d.maxEntryBytes,
    rotate: optional(a, 'rotate', path, readRotate) ?? { ...d.rotate },
    maxBufferedBytes: optional(a, 'maxBufferedBytes', path, (x, q) => integer(x, q, 64 * 1024, GIB)) ?? d.maxBufferedBytes,
  };
  if (out.maxBufferedBytes < out.maxEntryBytes) {
    fail(`${path}.maxBufferedBytes`, `must be at least maxEntryBytes (${out.maxEntryBytes})`);
  }
  return out;
}

function readRotate(v: unknown, path: string): AuditRotateOptions {
  const r = object(v, path, keysOf<NonNullable<AuditConfig['rotate']>>({ maxBytes: true, keep: true }));
  const d = DEFAULTS.audit.rotate;
  const maxBytes = optional(r, 'maxBytes', path, (x, q) => integer(x, q, 0)) ?? d.maxBytes;
  if (maxBytes !== 0 && maxBytes < 64 * 1024) fail(`${path}.maxBytes`, `must be 0 (no rotation) or at least 65536, got ${maxBytes}`);
  return { maxBytes, keep: optional(r, 'keep', path, (x, q) => integer(x, q, 1, 1000)) ?? d.keep };
}

/** The configuration file's `metrics`. */
export interface MetricsConfig extends Commented {
  /** `tcp:HOST:PORT`; a host that is not loopback needs `allowRemote`. */
  listen: `tcp:${string}`;
  allowRemote?: boolean;
}

/** Parses `tcp:HOST:PORT` for the metrics listener; throws AddressError, naming what it takes, for anything else. */
export function metricsAddress(text: string): TcpAddress {
  const takes = 'the metrics listener takes tcp:HOST:PORT (Prometheus scrapes over TCP)';
  let a: ReturnType<typeof parseAddress>;
  try {
    a = parseAddress(text);
  } catch (e) {
    if (!(e instanceof AddressError)) throw e;
    // HOST:PORT without the scheme is the usual slip: say what was meant.
    const meant = /^(?:\[[^\]]+\]|[^:/]+):\d+$/.test(text) ? `; did you mean tcp:${text}?` : '';
    throw new AddressError(text.startsWith('tcp:') ? e.message : `'${text}': ${takes}${meant}`);
  }
  if (a.type !== 'tcp') throw new AddressError(`'${text}': ${takes}`);
  return a;
}

/** Reads the config file's `metrics` object: `{"listen": "tcp:127.0.0.1:9464", "allowRemote": false}`. */
export function readMetricsOptions(v: unknown, path: string): MetricsOptions {
  const m = object(v, path, keysOf<MetricsConfig>({ listen: true, allowRemote: true }));
  const at = `${path}.listen`;
  let listen: TcpAddress;
  try {
    listen = metricsAddress(string(m.listen, at));
  } catch (e) {
    if (!(e instanceof AddressError)) throw e;
    return fail(at, e.message);
  }
  return { listen, allowRemote: optional(m, 'allowRemote', path, boolean) ?? false };
}

/**
 * The listener to run, if any: `--metrics` replaces the file's address and
 * keeps its `allowRemote`.
 */
export function resolveMetricsOptions(flag: TcpAddress | undefined, file: MetricsOptions | undefined): MetricsOptions | undefined {
  if (flag) return { listen: flag, allowRemote: file?.allowRemote ?? false };
  return file;
}
