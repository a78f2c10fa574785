import { qemuNumberText } from './number.ts';
import { qdictOrder } from './qdict.ts';
import { JsonNumber, type JsonValue } from './value.ts';

/**
 * The bytes QEMU itself would write for a value it had parsed: member order
 * of its hash table, numbers through its int64/uint64/double rules,
 * ASCII-only strings. qmp-mux uses it for everything it answers in QEMU's
 * name.
 */
export function writeQemu(v: JsonValue): string {
  if (v === null) return 'null';
  if (v === true) return 'true';
  if (v === false) return 'false';
  if (typeof v === 'string') return quoteString(v);
  if (v instanceof JsonNumber) return qemuNumberText(v);
  if (Array.isArray(v)) return `[${v.map(writeQemu).join(', ')}]`;
  return `{${qdictOrder([...v.keys()]).map((k) => `${quoteString(k)}: ${writeQemu(v.get(k)!)}`).join(', ')}}`;
}

const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** A JSON string literal escaped as QEMU escapes it: ASCII only, upper-case `\uXXXX`. */
export function quoteString(s: string): string {
  if (PLAIN.test(s)) return `"${s}"`;
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    switch (c) {
      case 0x22: out += '\\"'; break;
      case 0x5c: out += '\\\\'; break;
      case 0x08: out += '\\b'; break;
      case 0x0c: out += '\\f'; break;
      case 0x0a: out += '\\n'; break;
      case 0x0d: out += '\\r'; break;
      case 0x09: out += '\\t'; break;
      default:
        if (c < 0x20 || c >= 0x7f) out += '\\u' + c.toString(16).toUpperCase().padStart(4, '0');
        else out += s[i];
    }
  }
  return out + '"';
}

/** A value written as compactly as QEMU's reader allows, and what QEMU's limits count in it. */
export interface Compact {
  /** No whitespace; strings escape only what QEMU does not take raw. Encode as UTF-8. */
  text: string;
  /** Tokens, as QEMU's streamer counts them. */
  tokens: number;
  /** Deepest nesting of objects and arrays; 0 for a scalar. */
  depth: number;
}

/** What a value's compact text would measure, without the text. */
export interface Measured {
  /** Bytes of the text, UTF-8. */
  bytes: number;
  tokens: number;
  depth: number;
}

/**
 * Writes a value for QEMU to read: every number digit for digit as it was
 * received, members in the order received, and nothing escaped that QEMU
 * accepts raw (non-ASCII and DEL go as UTF-8), so the text is as short as
 * JSON allows. QEMU reads its monitor one byte per system call.
 */
export function writeCompact(v: JsonValue): Compact {
  return writeCompactWithin(v, Infinity) as Compact;
}

/**
 * `writeCompact`, giving up as soon as the text is longer than `maxLength`
 * characters (each at least a byte in UTF-8): a value that will be refused
 * for its size is then only measured, which costs far less than writing it.
 */
export function writeCompactWithin(v: JsonValue, maxLength: number): Compact | Measured {
  const count: Count = { tokens: 0, depth: 0, length: 0, maxLength };
  try {
    const text = compact(v, count, 0);
    return { text, tokens: count.tokens, depth: count.depth };
  } catch (e) {
    if (e !== PAST_LIMIT) throw e;
    return measureCompact(v);
  }
}

interface Count {
  tokens: number;
  depth: number;
  /** Characters written so far (a lower bound while containers are open). */
  length: number;
  maxLength: number;
}

const PAST_LIMIT = new Error('the compact text is past its limit');

function compact(v: JsonValue, count: Count, level: number): string {
  if (!(v instanceof Map) && !Array.isArray(v)) {
    count.tokens++;
    const text = v === null ? 'null' : v === true ? 'true' : v === false ? 'false' : typeof v === 'string' ? quoteCompact(v) : v.text;
    if ((count.length += text.length) > count.maxLength) throw PAST_LIMIT;
    return text;
  }
  const inner = level + 1;
  if (inner > count.depth) count.depth = inner;
  if (Array.isArray(v)) {
    // Brackets and the commas between items.
    count.tokens += 1 + Math.max(v.length, 1);
    if ((count.length += 1 + v.length) > count.maxLength) throw PAST_LIMIT;
    let out = '[';
    for (let i = 0; i < v.length; i++) out += (i === 0 ? '' : ',') + compact(v[i]!, count, inner);
    return out + ']';
  }
  // Braces, the commas between members, and each member's key and colon.
  count.tokens += 1 + Math.max(v.size, 1) + 2 * v.size;
  if ((count.length += 1 + 2 * v.size) > count.maxLength) throw PAST_LIMIT;
  let out = '{';
  for (const [key, value] of v) {
    const quoted = quoteCompact(key);
    if ((count.length += quoted.length) > count.maxLength) throw PAST_LIMIT;
    out += (out.length === 1 ? '' : ',') + quoted + ':' + compact(value, count, inner);
  }
  return out + '}';
}

/** What `writeCompact(v)` would measure, counted without writing it. */
export function measureCompact(v: JsonValue): Measured {
  const m: Measured = { bytes: 0, tokens: 0, depth: 0 };
  measure(v, m, 0);
  return m;
}

function measure(v: JsonValue, m: Measured, level: number): void {
  if (!(v instanceof Map) && !Array.isArray(v)) {
    m.tokens++;
    m.bytes += v === null || v === true ? 4 : v === false ? 5 : typeof v === 'string' ? quotedBytes(v) : v.text.length;
    return;
  }
  const inner = level + 1;
  if (inner > m.depth) m.depth = inner;
  if (Array.isArray(v)) {
    m.tokens += 1 + Math.max(v.length, 1);
    m.bytes += 1 + Math.max(v.length, 1);
    for (const item of v) measure(item, m, inner);
    return;
  }
  m.tokens += 1 + Math.max(v.size, 1) + 2 * v.size;
  m.bytes += 1 + Math.max(v.size, 1) + v.size;
  for (const [key, value] of v) {
    m.bytes += quotedBytes(key);
    measure(value, m, inner);
  }
}

/** The UTF-8 bytes of `quoteCompact(s)`. */
function quotedBytes(s: string): number {
  NEEDS_ESCAPE.lastIndex = 0;
  if (!NEEDS_ESCAPE.test(s)) return Buffer.byteLength(s, 'utf8') + 2;
  return Buffer.byteLength(quoteCompact(s), 'utf8');
}

/** What QEMU's lexer does not take raw in a string: the quote, the backslash, control characters. */
const NEEDS_ESCAPE = /["\\\x00-\x1f]/g;
const SHORT_ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** A string literal escaping only what must be, for QEMU to read. */
export function quoteCompact(s: string): string {
  NEEDS_ESCAPE.lastIndex = 0;
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  return `"${s.replace(NEEDS_ESCAPE, (c) => SHORT_ESCAPES[c] ?? `\\u00${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}"`;
}
