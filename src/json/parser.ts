import { Tok } from './lexer.ts';
import type { TokenList } from './tokens.ts';
import { decodeCodepoint, isValidCodepoint, pushCodepoint } from './utf8.ts';
import { JsonNumber, type JsonObject, type JsonValue } from './value.ts';

/** A parse error; `desc` is the complete text QEMU reports. */
export class JsonParseError extends Error {
  constructor(readonly desc: string) {
    super(desc);
  }
}

const PREFIX = 'JSON parse error, ';
/** QEMU formats parse errors into a 1024-byte buffer. */
const MAX_MESSAGE = 1023;

/**
 * Parses one message's tokens into a value with QEMU's grammar and QEMU's
 * error texts. Only the first error counts, as in QEMU, so it is thrown.
 */
export function parseTokens(tokens: TokenList): JsonValue {
  return new Parser(tokens).value();
}

class Parser {
  private pos = 0;
  private readonly decoded = { next: 0 };

  constructor(private readonly t: TokenList) {}

  value(): JsonValue {
    if (this.pos >= this.t.count) this.fail('premature EOI');
    switch (this.t.types[this.pos]) {
      case Tok.LCurly: return this.object();
      case Tok.LSquare: return this.array();
      case Tok.String: return this.string(this.pos++);
      case Tok.Integer: return new JsonNumber(this.ascii(this.pos++), true);
      case Tok.Float: return new JsonNumber(this.ascii(this.pos++), false);
      case Tok.Keyword: return this.keyword(this.pos++);
      default: return this.fail('expecting value');
    }
  }

  private object(): JsonObject {
    this.pos++;
    const dict: JsonObject = new Map();
    if (this.pos >= this.t.count) this.fail('premature EOI');
    if (this.t.types[this.pos] === Tok.RCurly) {
      this.pos++;
      return dict;
    }
    this.pair(dict);
    for (;;) {
      if (this.pos >= this.t.count) this.fail('premature EOI');
      const type = this.t.types[this.pos++];
      if (type === Tok.RCurly) return dict;
      if (type !== Tok.Comma) this.fail('expected separator in dict');
      this.pair(dict);
    }
  }

  private pair(dict: JsonObject): void {
    if (this.pos >= this.t.count) this.fail('premature EOI');
    const key = this.value();
    if (typeof key !== 'string') this.fail('key is not a string in object');
    if (this.pos >= this.t.count) this.fail('premature EOI');
    if (this.t.types[this.pos++] !== Tok.Colon) this.fail('missing : in object pair');
    const value = this.value();
    if (dict.has(key)) this.fail('duplicate key');
    dict.set(key, value);
  }

  private array(): JsonValue[] {
    this.pos++;
    const list: JsonValue[] = [];
    if (this.pos >= this.t.count) this.fail('premature EOI');
    if (this.t.types[this.pos] === Tok.RSquare) {
      this.pos++;
      return list;
    }
    list.push(this.value());
    for (;;) {
      if (this.pos >= this.t.count) this.fail('premature EOI');
      const type = this.t.types[this.pos++];
      if (type === Tok.RSquare) return list;
      if (type !== Tok.Comma) this.fail('expected separator in list');
      list.push(this.value());
    }
  }

  private keyword(index: number): JsonValue {
    const word = this.ascii(index);
    if (word === 'true') return true;
    if (word === 'false') return false;
    if (word === 'null') return null;
    return this.fail(`invalid keyword '${word}'`.slice(0, MAX_MESSAGE));
  }

  private ascii(index: number): string {
    return latin1(this.t.text, this.t.starts[index]!, this.t.ends[index]!);
  }

  private string(index: number): string {
    const text = this.t.text;
    const start = this.t.starts[index]! + 1;
    const end = this.t.ends[index]! - 1; // the closing quote
    let plain = true;
    for (let i = start; i < end; i++) {
      const b = text[i]!;
      if (b === 0x5c || b >= 0x80) {
        plain = false;
        break;
      }
    }
    if (plain) return latin1(text, start, end);

    const units: number[] = [];
    let p = start;
    while (p < end) {
      const b = text[p]!;
      if (b !== 0x5c) {
        const cp = decodeCodepoint(text, p, end, this.decoded);
        if (cp < 0) this.fail('invalid UTF-8 sequence in string');
        p = this.decoded.next;
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
      if (escape !== 0x75 /* u */) this.fail('invalid escape sequence in string');
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
        this.failBytes(raw, ' is not a valid Unicode character');
      }
      pushCodepoint(units, cp);
    }
    return unitsToString(units);
  }

  private fail(message: string): never {
    throw new JsonParseError(PREFIX + message);
  }

  private failBytes(raw: Uint8Array, suffix: string): never {
    throw new JsonParseError(PREFIX + qemuString(raw) + suffix);
  }
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

/** Below this length a string is built byte by byte, cheaper than a Buffer made to decode it. */
const SHORT = 32;

/** `bytes[start, end)` read as Latin-1 (for ASCII, the same as UTF-8). */
function latin1(bytes: Uint8Array, start: number, end: number): string {
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
  const decoded = { next: 0 };
  let p = 0;
  while (p < bytes.length && bytes[p] !== 0) {
    const cp = decodeCodepoint(bytes, p, bytes.length, decoded);
    pushCodepoint(units, cp < 0 ? 0xfffd : cp);
    p = decoded.next;
  }
  return unitsToString(units);
}
