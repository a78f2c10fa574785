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
