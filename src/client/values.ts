import { ValueError } from '../errors.ts';
import { JsonNumber, type JsonObject, type JsonValue } from '../json/value.ts';

/**
 * Values as the library hands them out. JSON's types, with one rule for
 * numbers so none is silently changed: an integer is a `number` when it is a
 * safe integer (|n| ≤ 2^53 - 1) and a `bigint` otherwise (QMP carries int64
 * and uint64, e.g. `18446744073709551615`); any other number is a `number`
 * (QEMU holds those as doubles too), and QEMU's `inf`, `-inf` and `nan`
 * become `Infinity`, `-Infinity` and `NaN`.
 */
export type QmpValue = null | boolean | number | bigint | string | QmpValue[] | QmpObject;
export interface QmpObject {
  [key: string]: QmpValue;
}

/**
 * Values the library accepts as arguments: what it hands out, plus
 * `JsonNumber` (sent exactly as its text) and `undefined` members (left
 * out, so optional arguments can be passed as they are).
 */
export type QmpInput = null | boolean | number | bigint | string | JsonNumber | readonly QmpInput[] | { readonly [key: string]: QmpInput | undefined };

/** A parsed JSON value as library values (see `QmpValue` for numbers). */
export function fromJson(v: JsonValue): QmpValue {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (v instanceof JsonNumber) return numberValue(v);
  if (Array.isArray(v)) return v.map(fromJson);
  const out: QmpObject = {};
  for (const [key, member] of v) setMember(out, key, fromJson(member));
  return out;
}

/** Library values as JSON, numbers written exactly; throws ValueError naming the member for a value JSON cannot carry. */
export function toJson(v: QmpInput, path = 'value'): JsonValue {
  if (v === null || typeof v === 'boolean' || typeof v === 'string' || v instanceof JsonNumber) return v;
  if (typeof v === 'bigint') return new JsonNumber(v.toString(), true);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new ValueError(`${path}: ${v} cannot be sent in JSON`);
    if (Number.isInteger(v) && !Number.isSafeInteger(v)) {
      throw new ValueError(`${path}: ${v} is past 2^53 and may have lost digits already; pass it as a bigint`);
    }
    return new JsonNumber(String(v), Number.isInteger(v));
  }
  if (isList(v)) return v.map((item, i) => toJson(item, `${path}[${i}]`));
  if (!isPlainObject(v)) {
    throw new ValueError(`${path}: a ${describe(v)} cannot be sent in JSON`);
  }
  const out: JsonObject = new Map();
  for (const [key, member] of Object.entries(v)) {
    if (member !== undefined) out.set(key, toJson(member, `${path}.${key}`));
  }
  return out;
}

function isList(v: QmpInput): v is readonly QmpInput[] {
  return Array.isArray(v);
}

function isPlainObject(v: unknown): v is { readonly [key: string]: QmpInput | undefined } {
  if (typeof v !== 'object' || v === null) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function numberValue(n: JsonNumber): number | bigint {
  const special = NON_FINITE.get(n.text);
  if (special !== undefined) return special;
  if (!n.integer) return Number(n.text);
  const value = Number(n.text);
  return Number.isSafeInteger(value) ? value : BigInt(n.text);
}

const NON_FINITE = new Map([
  ['inf', Infinity],
  ['-inf', -Infinity],
  ['nan', NaN],
  ['-nan', NaN],
]);

/** Sets a member even when it is named `__proto__`. */
function setMember(o: QmpObject, key: string, value: QmpValue): void {
  if (key === '__proto__') Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
  else o[key] = value;
}

function describe(v: unknown): string {
  if (typeof v === 'object' && v !== null) return v.constructor?.name ?? 'object';
  return typeof v;
}
