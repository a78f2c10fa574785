import { JsonNumber, type JsonValue } from '../json/value.ts';
import { quoteUnsafe as quote } from '../util/unsafe-text.ts';
import type { QmpEvent } from './qmp-client.ts';

/**
 * A value as JSON text for output, numbers with the exact text they arrived
 * with (QEMU's `inf`/`nan` included, as QEMU sent them). Compact is one line
 * without spaces, for scripts; pretty indents by two spaces, for people.
 * Strings escape every control character (DEL and C1 too, which JSON
 * allows raw), so what a server sends cannot drive the terminal.
 */
export function formatJson(v: JsonValue, pretty: boolean): string {
  return pretty ? indented(v, '') : compact(v);
}

const INDENT = '  ';

function scalar(v: Exclude<JsonValue, JsonValue[] | Map<string, JsonValue>>): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return String(v);
  if (v instanceof JsonNumber) return v.text;
  return quote(v);
}

function compact(v: JsonValue): string {
  if (Array.isArray(v)) return `[${v.map(compact).join(',')}]`;
  if (v instanceof Map) return `{${[...v].map(([key, member]) => `${quote(key)}:${compact(member)}`).join(',')}}`;
  return scalar(v);
}

function indented(v: JsonValue, margin: string): string {
  if (!Array.isArray(v) && !(v instanceof Map)) return scalar(v);
  const inner = margin + INDENT;
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return `[\n${v.map((item) => inner + indented(item, inner)).join(',\n')}\n${margin}]`;
  }
  if (v.size === 0) return '{}';
  const members = [...v].map(([key, member]) => `${inner}${quote(key)}: ${indented(member, inner)}`);
  return `{\n${members.join(',\n')}\n${margin}}`;
}

/** `event STOP 14:02:08.959123 {"reason": ...}`: name, QEMU's timestamp in local time, data. */
export function describeEvent(event: QmpEvent, pretty: boolean): string {
  const { seconds, microseconds } = event.timestamp;
  let text = `event ${event.event}`;
  if (seconds >= 0) {
    const time = new Date(seconds * 1000).toTimeString().slice(0, 8);
    text += ` ${time}.${String(microseconds).padStart(6, '0')}`;
  }
  const data = event.json.get('data');
  if (data !== undefined) text += ` ${formatJson(data, pretty)}`;
  return text;
}
