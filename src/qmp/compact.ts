import { Byte, isSpace } from './bytes.ts';

/**
 * QEMU's pretty output turned into its compact output: whitespace outside
 * strings dropped, one space after each `,` and `:`.
 */
export function compactJson(bytes: Buffer): Buffer {
  const out = Buffer.allocUnsafe(bytes.length * 2);
  let n = 0;
  let inString = false;
  let escaped = false;
  for (const c of bytes) {
    if (inString) {
      out[n++] = c;
      if (escaped) escaped = false;
      else if (c === Byte.Backslash) escaped = true;
      else if (c === Byte.Quote) inString = false;
      continue;
    }
    if (isSpace(c)) continue;
    out[n++] = c;
    if (c === Byte.Quote) inString = true;
    else if (c === Byte.Comma || c === Byte.Colon) out[n++] = Byte.Space;
  }
  return out.subarray(0, n);
}
