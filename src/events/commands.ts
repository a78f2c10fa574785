import { JsonNumber, type JsonObject, type JsonValue } from '../json/value.ts';

/** An argument error: the `desc` of a GenericError, worded as QEMU's argument checks word theirs. */
export interface ArgumentError {
  error: string;
}

export interface QueryEventsArguments {
  error?: undefined;
  /** Events numbered after this; undefined: every event kept. */
  since: number | undefined;
  /** Glob patterns of event names; undefined: all (within the endpoint's filter). */
  events: string[] | undefined;
}

export interface SetEventsArguments {
  error?: undefined;
  /** Glob patterns of the event names the calling client receives from now on (`["*"]`: all again). */
  events: string[];
}

/** `{"since": N, "events": [globs]}`, both optional. */
export function readQueryEventsArguments(args: JsonObject | undefined): QueryEventsArguments | ArgumentError {
  const unexpected = unexpectedMember(args, ['since', 'events']);
  if (unexpected) return unexpected;
  let since: number | undefined;
  const sinceValue = args?.get('since');
  if (sinceValue !== undefined) {
    if (!(sinceValue instanceof JsonNumber)) return typeError('since', 'integer');
    if (!sinceValue.integer || sinceValue.text.startsWith('-') || BigInt(sinceValue.text) >= 1n << 64n) {
      return { error: "Parameter 'since' expects uint64" };
    }
    since = Number(sinceValue.text);
  }
  const eventsValue = args?.get('events');
  if (eventsValue === undefined) return { since, events: undefined };
  const events = readPatterns(eventsValue);
  return Array.isArray(events) ? { since, events } : events;
}

/** `{"events": [globs]}`, required. */
export function readSetEventsArguments(args: JsonObject | undefined): SetEventsArguments | ArgumentError {
  const unexpected = unexpectedMember(args, ['events']);
  if (unexpected) return unexpected;
  const value = args?.get('events');
  if (value === undefined) return { error: "Parameter 'events' is missing" };
  const events = readPatterns(value);
  return Array.isArray(events) ? { events } : events;
}

/** The first member of `args` not among `known`, as QEMU words it. */
export function unexpectedMember(args: JsonObject | undefined, known: readonly string[]): ArgumentError | undefined {
  for (const key of args?.keys() ?? []) {
    if (!known.includes(key)) return { error: `Parameter '${key}' is unexpected` };
  }
  return undefined;
}

function readPatterns(value: JsonValue): string[] | ArgumentError {
  if (!Array.isArray(value)) return typeError('events', 'array');
  const patterns: string[] = [];
  for (const [i, item] of value.entries()) {
    if (typeof item !== 'string') return typeError(`events[${i}]`, 'string');
    patterns.push(item);
  }
  return patterns;
}

/** An argument of the wrong JSON type, as QEMU words it. */
export function typeError(name: string, expected: string): ArgumentError {
  return { error: `Invalid parameter type for '${name}', expected: ${expected}` };
}
