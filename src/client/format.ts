import { quoteCompact, writeCompact } from '../json/writer.ts';
import { JsonNumber, type JsonValue } from '../json/value.ts';

/**
 * A value as JSON text for output, numbers with the exact text they arrived
 * with (QEMU's `inf`/`nan` included, as QEMU sent them). Compact is one line
 * without spaces, for scripts; pretty indents by two spaces, for people.
 */
export function formatJson(v: JsonValue, pretty: boolean): string {
  return pretty ? indented(v, '') : writeCompact(v).text;
}

const INDENT = '  ';

function indented(v: JsonValue, margin: string): string {
  if (v === null || typeof v !== 'object' || v instanceof JsonNumber) return writeCompact(v).text;
  const inner = margin + INDENT;
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return `[\n${v.map((item) => inner + indented(item, inner)).join(',\n')}\n${margin}]`;
  }
  if (v.size === 0) return '{}';
  const members = [...v].map(([key, member]) => `${inner}${quoteCompact(key)}: ${indented(member, inner)}`);
  return `{\n${members.join(',\n')}\n${margin}}`;
}
