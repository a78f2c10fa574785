import { boolean, fail, integer, object, oneOf, optional, string } from '../config/fields.ts';

/** The event journal's bounds; the oldest events go first when either is reached. */
export interface JournalOptions {
  /** Events kept. 0 keeps none (sequence numbers still count). */
  maxEvents: number;
  /** Bytes of QEMU's event text kept. An event larger than this is numbered but not kept. */
  maxBytes: number;
}

/** Which commands (and whether events) go to the audit log. */
export const AUDIT_RECORD_LEVELS = ['changes', 'commands', 'all'] as const;
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

/**
 * Defaults. The journal keeps 10,000 events: QEMU emits a handful per
 * second even when busy (bursts of a few hundred during migration or block
 * jobs), so that covers far longer than a client takes to restart; its
 * events are 100 to 300 bytes, so 4 MiB is reached only by unusually large
 * events, and a whole journal in one `query-events` reply stays well under
 * a client's default output limit (16 MiB). The audit log leaves arguments
 * out unless asked (secrets), rotates at 64 MiB keeping 5 files (at most
 * 384 MiB in all), and buffers 4 MiB (some 20,000 lines) for a slow disk.
 */
export const OPS_DEFAULTS = Object.freeze({
  journal: Object.freeze({ maxEvents: 10_000, maxBytes: 4 * 1024 * 1024 }),
  audit: Object.freeze({
    record: 'changes' as AuditRecord,
    arguments: false,
    maxEntryBytes: 64 * 1024,
    rotate: Object.freeze({ maxBytes: 64 * 1024 * 1024, keep: 5 }),
    maxBufferedBytes: 4 * 1024 * 1024,
  }),
});

const GIB = 1024 * 1024 * 1024;

/** Reads the configuration file's `journal` object. */
export function readJournalOptions(v: unknown, path: string): JournalOptions {
  const j = object(v, path, ['maxEvents', 'maxBytes']);
  const d = OPS_DEFAULTS.journal;
  return {
    maxEvents: optional(j, 'maxEvents', path, (x, q) => integer(x, q, 0, 10_000_000)) ?? d.maxEvents,
    maxBytes: optional(j, 'maxBytes', path, (x, q) => integer(x, q, 0, GIB)) ?? d.maxBytes,
  };
}

/** Reads the configuration file's `audit` object (`path` is required). */
export function readAuditOptions(v: unknown, path: string): AuditOptions {
  const a = object(v, path, ['path', 'record', 'arguments', 'maxEntryBytes', 'rotate', 'maxBufferedBytes']);
  const d = OPS_DEFAULTS.audit;
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
  const r = object(v, path, ['maxBytes', 'keep']);
  const d = OPS_DEFAULTS.audit.rotate;
  const maxBytes = optional(r, 'maxBytes', path, (x, q) => integer(x, q, 0)) ?? d.maxBytes;
  if (maxBytes !== 0 && maxBytes < 64 * 1024) fail(`${path}.maxBytes`, `must be 0 (no rotation) or at least 65536, got ${maxBytes}`);
  return { maxBytes, keep: optional(r, 'keep', path, (x, q) => integer(x, q, 1, 1000)) ?? d.keep };
}

/** The endpoint key that adds the sequence number to every live event its clients receive. */
export const EVENT_SEQUENCE_KEY = 'eventSequence';

/** Reads an endpoint's `eventSequence` (default false). */
export function readEventSequence(endpoint: Record<string, unknown>, path: string): boolean {
  return optional(endpoint, EVENT_SEQUENCE_KEY, path, boolean) ?? false;
}
