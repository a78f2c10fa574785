/**
 * Characters that must not reach a terminal raw, or split a line: control
 * characters (C0, DEL and C1, which drive terminals: ESC, CSI...), the
 * Unicode line and paragraph separators, and the marks that reorder text
 * on display. Anything a client or a server chose is written through
 * `escapeUnsafe` before it goes to a log or a terminal.
 */
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'g');
const SHORT: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** Whether `text` has a character `escapeUnsafe` would escape. */
export function hasUnsafe(text: string): boolean {
  return UNSAFE.test(text);
}

/**
 * `text` with each unsafe character written as a JSON escape (`\n`,
 * `\u001B`), but those in `keep` (a multi-line text keeps `\n`). Inside a
 * JSON string literal the result is the same string, still valid JSON.
 */
export function escapeUnsafe(text: string, keep = ''): string {
  if (!UNSAFE.test(text)) return text;
  return text.replace(UNSAFE_ALL, (c) => (keep.includes(c) ? c : (SHORT[c] ?? `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`)));
}

/** A JSON string literal of `text`, every unsafe character escaped (for output, not for QEMU: nothing else is escaped). */
export function quoteUnsafe(text: string): string {
  return `"${escapeUnsafe(text.replace(/["\\]/g, '\\$&'))}"`;
}
