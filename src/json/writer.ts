import { qemuNumberText } from './number.ts';
import { qdictOrder } from './qdict.ts';
import { JsonNumber, type JsonValue } from './value.ts';

/**
 * Serializers. `writeQemu` produces the bytes QEMU itself would write for a
 * value it had parsed (member order of its hash table, numbers through its
 * int64/uint64/double rules, ASCII-only strings); qmp-mux uses it for
 * everything it answers in QEMU's name. `writeUpstream` produces what
 * qmp-mux sends to QEMU: the value it validated, numbers digit for digit.
 */
export function writeQemu(v: JsonValue): string {
  return write(v, true);
}

export function writeUpstream(v: JsonValue): string {
  return write(v, false);
}

function write(v: JsonValue, asQemu: boolean): string {
  if (v === null) return 'null';
  if (v === true) return 'true';
  if (v === false) return 'false';
  if (typeof v === 'string') return quoteString(v);
  if (v instanceof JsonNumber) return asQemu ? qemuNumberText(v) : v.text;
  const sep = asQemu ? ', ' : ',';
  if (Array.isArray(v)) {
    return `[${v.map((item) => write(item, asQemu)).join(sep)}]`;
  }
  const keys = asQemu ? qdictOrder([...v.keys()]) : [...v.keys()];
  const colon = asQemu ? ': ' : ':';
  return `{${keys.map((k) => quoteString(k) + colon + write(v.get(k)!, asQemu)).join(sep)}}`;
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
