import { boolean, fail, integer, keysOf, object, oneOf, optional, string, type Commented } from '../config/fields.ts';
import { DEFAULTS } from '../config/options.ts';

/** The event journal's bounds; the oldest events go first when either is reached. */
export interface JournalOptions {
  /** Events kept. 0 keeps none (sequence numbers still count). */
  maxEvents: number;
  /** Bytes of QEMU's event text kept. An event larger than this is numbered but not kept. */
  maxBytes: number;
}

/** Which commands (and whether events) go to the audit log. */
const AUDIT_RECORD_LEVELS = ['changes', 'commands', 'all'] as const;
export type AuditRecord = (typeof AUDIT_RECORD_LEVELS)[number];

export interface AuditRotateOptions {
  /** Size in bytes past which the file is rotated before the next line; 0: no built-in rotation. */
  maxBytes: number;
  /** Rotated files kept: `PATH.1` (newest) to `PATH.keep`. */
  keep: number;
}

export interface AuditOptions {
  /** The JSON-lines file, created with mode 0600 if missing, appended to if present. */
  path: string;
  /** `changes`: state-changing commands; `commands`: every command; `all`: every command and every event. */
  record: AuditRecord;
  /** Record each command's arguments (they can hold secrets: `set_password`, `object-add` of a secret). */
  arguments: boolean;
  /** Longest line in bytes; what the client controls (arguments, then id, then command name) is cut to fit. */
  maxEntryBytes: number;
  rotate: AuditRotateOptions;
  /** Bytes of lines waiting for the disk; past this, new entries are dropped and counted. */
  maxBufferedBytes: number;
}

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
