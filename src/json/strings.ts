import { decodeCodepoint, isValidCodepoint, pushCodepoint } from './utf8.ts';

/**
 * The text of single tokens, decoded as QEMU's parser decodes it, with its
 * error texts. A token is decoded as soon as it is read, from the lexer's
 * buffer, which then forgets it.
 */

/** A token QEMU's parser rejects; `desc` is the complete text it reports. */
export class Invalid {
  constructor(readonly desc: string) {}
}

const PREFIX = 'JSON parse error, ';
/** QEMU formats parse errors into a 1024-byte buffer. */
const MAX_MESSAGE = 1023;

/** A parse error as QEMU words it. */
export function invalid(message: string): Invalid {
  return new Invalid(PREFIX + message);
}

/** A keyword token `text[start, end)`. */
export function keyword(text: Uint8Array, start: number, end: number): boolean | null | Invalid {
  const word = latin1(text, start, end);
  if (word === 'true') return true;
  if (word === 'false') return false;
  if (word === 'null') return null;
  return invalid(`invalid keyword '${word}'`.slice(0, MAX_MESSAGE));
}

/** A string token `text[start, end)`, quotes included. */
export function stringToken(text: Uint8Array, start: number, end: number): string | Invalid {
  const first = start + 1;
  const last = end - 1; // the closing quote
  for (let i = first; i < last; i++) {
    const b = text[i]!;
    if (b === 0x5c || b >= 0x80) return escaped(text, first, last);
  }
  return latin1(text, first, last);
}

const decoded = { next: 0 };

function escaped(text: Uint8Array, start: number, end: number): string | Invalid {
  const units: number[] = [];
  let p = start;
  while (p < end) {
    const b = text[p]!;
    if (b !== 0x5c) {
      const cp = decodeCodepoint(text, p, end, decoded);
      if (cp < 0) return invalid('invalid UTF-8 sequence in string');
      p = decoded.next;
      pushCodepoint(units, cp);
      continue;
    }
    const escape = text[p + 1]!;
    const simple = SIMPLE_ESCAPES[escape];
    if (simple !== undefined) {
      units.push(simple);
      p += 2;
      continue;
    }
    if (escape !== 0x75 /* u */) return invalid('invalid escape sequence in string');
    const begin = p;
    let cp = hex4(text, p + 2, end);
    p += 6;
    if (cp >= 0xd800 && cp <= 0xdbff && text[p] === 0x5c && text[p + 1] === 0x75) {
      const trailing = hex4(text, p + 2, end);
      if (trailing >= 0xdc00 && trailing <= 0xdfff) {
        cp = 0x10000 + ((cp & 0x3ff) << 10) + (trailing & 0x3ff);
        p += 6;
      } else {
        cp = -1;
      }
    }
    if (cp < 0 || !isValidCodepoint(cp)) {
      // QEMU quotes the escape as far as it read, stopping at the token's end.
      const raw = text.subarray(begin, Math.min(p, end + 1));
      return new Invalid(PREFIX + qemuString(raw) + ' is not a valid Unicode character');
    }
    pushCodepoint(units, cp);
  }
  return unitsToString(units);
}

const SIMPLE_ESCAPES: Record<number, number> = {
  0x22: 0x22, // "
  0x27: 0x27, // '
  0x5c: 0x5c, // \
  0x2f: 0x2f, // /
  0x62: 0x08, // b
  0x66: 0x0c, // f
  0x6e: 0x0a, // n
  0x72: 0x0d, // r
  0x74: 0x09, // t
};

/**
 * Up to this length a string is built byte by byte: cheaper than a Buffer
 * made to decode it, and still one flat string (V8 joins longer ones as a
 * chain of ropes, 32 bytes a character, kept until something flattens it).
 */
const SHORT = 12;

/** `bytes[start, end)` read as Latin-1 (for ASCII, the same as UTF-8). */
export function latin1(bytes: Uint8Array, start: number, end: number): string {
  if (end - start > SHORT) return Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('latin1');
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

function hex4(text: Uint8Array, at: number, end: number): number {
  let cp = 0;
  for (let i = 0; i < 4; i++) {
    const c = at + i <= end ? text[at + i]! : 0;
    let d: number;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
    else if (c >= 0x41 && c <= 0x46) d = c - 0x41 + 10;
    else return -1;
    cp = cp * 16 + d;
  }
  return cp;
}

function unitsToString(units: number[]): string {
  let s = '';
  for (let i = 0; i < units.length; i += 4096) {
    s += String.fromCharCode(...units.slice(i, i + 4096));
  }
  return s;
}

/**
 * Bytes as QEMU's writer reads them: modified UTF-8, stopping at a NUL (its
 * strings are C strings), each invalid sequence becoming U+FFFD.
 */
export function qemuString(bytes: Uint8Array): string {
  const units: number[] = [];
  let p = 0;
  while (p < bytes.length && bytes[p] !== 0) {
    const cp = decodeCodepoint(bytes, p, bytes.length, decoded);
    pushCodepoint(units, cp < 0 ? 0xfffd : cp);
    p = decoded.next;
  }
  return unitsToString(units);
}
