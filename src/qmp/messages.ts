import type { JsonValue } from '../json/value.ts';
import { quoteString, writeQemu } from '../json/writer.ts';

/** Every message qmp-mux writes ends as QEMU's do. */
export const EOL = '\r\n';

/** QAPI error classes qmp-mux itself reports. */
export type ErrorClass = 'GenericError' | 'CommandNotFound';

/**
 * A QMP error response, byte for byte as QEMU writes it: `{"error": ...}`
 * without an id, `{"id": ..., "error": ...}` with one (QEMU's hash order).
 * `idText` is the id already serialized by `writeQemu`.
 */
export function errorResponse(idText: string | undefined, errorClass: ErrorClass, desc: string): string {
  const error = `"error": {"class": "${errorClass}", "desc": ${quoteString(desc)}}`;
  return idText === undefined ? `{${error}}${EOL}` : `{"id": ${idText}, ${error}}${EOL}`;
}

/** A QMP success response, `{"return": ..., "id": ...}` as QEMU writes it. */
export function returnResponse(idText: string | undefined, value: JsonValue): string {
  const ret = `"return": ${writeQemu(value)}`;
  return idText === undefined ? `{${ret}}${EOL}` : `{${ret}, "id": ${idText}}${EOL}`;
}
