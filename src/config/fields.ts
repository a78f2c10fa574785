import { ConfigError } from '../errors.ts';

/**
 * Readers for configuration values: each takes an unknown value and the path
 * of the field it came from, and returns it typed or throws a ConfigError
 * that names the field and says what is wrong.
 */

/** Keys starting with this are allowed anywhere, for documentation; their values are ignored. */
const COMMENT = '$comment';

export function fail(path: string, reason: string): never {
  throw new ConfigError(`${path}: ${reason}`);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

/** Keys starting with `$comment` are allowed in every object of a configuration, for notes; their values are ignored. */
export interface Commented {
  readonly [comment: `$comment${string}`]: unknown;
}

/** Every key any member of a union has. */
type AllKeys<T> = T extends unknown ? keyof T : never;

/**
 * The keys of configuration type `T` (but `$comment`), each listed once:
 * a key `T` has and the list lacks, or the reverse, does not compile, so a
 * reader accepts exactly what the type describes.
 */
export function keysOf<T>(all: { readonly [K in Exclude<AllKeys<T>, `$comment${string}`>]-?: true }): readonly string[] {
  return Object.keys(all);
}

/** An object whose keys are all in `known` (plus `$comment`). */
export function object(v: unknown, path: string, known: readonly string[]): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, `expected an object, got ${describe(v)}`);
  const record = v as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (key.startsWith(COMMENT) || known.includes(key)) continue;
    const near = known.find((k) => k.toLowerCase() === key.toLowerCase());
    fail(`${path}.${key}`, `unknown key${near ? ` (did you mean '${near}'?)` : `; known keys: ${known.join(', ')}`}`);
  }
  return record;
}

export function string(v: unknown, path: string): string {
  if (typeof v !== 'string') fail(path, `expected a string, got ${describe(v)}`);
  if (v === '') fail(path, 'must not be empty');
  return v;
}

export function boolean(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') fail(path, `expected true or false, got ${describe(v)}`);
  return v;
}

/** An integer in [min, max]. */
export function integer(v: unknown, path: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(path, `expected an integer, got ${describe(v)}`);
  if (v < min || v > max) fail(path, `must be between ${min} and ${max}, got ${v}`);
  return v;
}

export function oneOf<T extends string>(v: unknown, path: string, choices: readonly T[]): T {
  if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) {
    fail(path, `expected one of ${choices.map((c) => `'${c}'`).join(', ')}, got ${describe(v)}`);
  }
  return v as T;
}

export function stringList(v: unknown, path: string, options: { nonEmpty?: boolean } = {}): string[] {
  if (!Array.isArray(v)) fail(path, `expected an array of strings, got ${describe(v)}`);
  if (options.nonEmpty && v.length === 0) fail(path, 'must not be empty');
  return v.map((item, i) => string(item, `${path}[${i}]`));
}

/** Reads `record[key]` with `read` when present. */
export function optional<T>(record: Record<string, unknown>, key: string, path: string, read: (v: unknown, path: string) => T): T | undefined {
  return record[key] === undefined ? undefined : read(record[key], `${path}.${key}`);
}
