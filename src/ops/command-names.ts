import { JsonStreamer } from '../json/streamer.ts';
import { isObject, type JsonValue } from '../json/value.ts';

/**
 * The command names in QEMU's reply to `query-commands`
 * (`{"return": [{"name": "device_add"}, ...]}`), for
 * `MuxMetrics.setCommandNames`; none when the reply is anything else.
 */
export function commandNames(reply: Buffer): string[] {
  let value: JsonValue | undefined;
  new JsonStreamer((m) => (value ??= m.value)).feed(reply);
  const list = isObject(value) ? value.get('return') : undefined;
  if (!Array.isArray(list)) return [];
  const names: string[] = [];
  for (const entry of list) {
    const name = isObject(entry) ? entry.get('name') : undefined;
    if (typeof name === 'string') names.push(name);
  }
  return names;
}
