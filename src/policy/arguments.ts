import { qemuNumberText } from '../json/number.ts';
import { isObject, JsonNumber, type JsonObject } from '../json/value.ts';

/**
 * The text a policy pattern is matched against for the argument at `path`
 * (member names, outermost first): a string as itself, a number as QEMU
 * would read it (`1E2` is `100`), a boolean as `true` or `false`.
 * Undefined when there is no such argument, or it is an object, an array
 * or null: no pattern matches those.
 */
export function argumentText(args: JsonObject | undefined, path: readonly string[]): string | undefined {
  let value = args?.get(path[0]!);
  for (let i = 1; i < path.length && value !== undefined; i++) value = isObject(value) ? value.get(path[i]!) : undefined;
  if (typeof value === 'string') return value;
  if (value instanceof JsonNumber) return qemuNumberText(value);
  if (typeof value === 'boolean') return String(value);
  return undefined;
}
