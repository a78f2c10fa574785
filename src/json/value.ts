/**
 * JSON values as qmp-mux holds them. Objects keep their member order and
 * numbers keep their source text, so a value can be written back without
 * losing a digit (QMP carries 64-bit integers that a double cannot hold).
 */

/** A JSON number, kept as the text the lexer accepted. */
export class JsonNumber {
  constructor(
    /** The number exactly as it appeared in the input, e.g. `18446744073709551615`. */
    readonly text: string,
    /** True for an integer literal (no fraction, no exponent). */
    readonly integer: boolean,
  ) {}
}

export type JsonObject = Map<string, JsonValue>;
export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject;

export function isObject(v: JsonValue | undefined): v is JsonObject {
  return v instanceof Map;
}
