import { Byte } from './bytes.ts';

/** Where the scan of a nested value is: brackets open (the top-level one counted), in a string, after a backslash there, a line feed seen. */
export interface NestedScan {
  depth: number;
  inString: boolean;
  escaped: boolean;
  multiline: boolean;
}

/**
 * Inside a nested value only brackets, strings and line feeds matter: a
 * tight loop over them (a 200 KB query-qmp-schema reply is mostly this).
 * It runs on locals only and returns its state anew, stored by no one
 * here: V8 compiles a loop this long while it runs, before the code after
 * it has ever run, and a store after the loop (into the framer, as this
 * was once written) then threw that compiled code away at the end of every
 * message, leaving the loop to the interpreter: 1.5 times as slow. Returns
 * where it stopped: the byte that closed the value, or the chunk's end.
 */
export function scanNested(chunk: Buffer, from: number, scan: Readonly<NestedScan>): { stop: number; scan: NestedScan } {
  let { depth, inString, escaped, multiline } = scan;
  const length = chunk.length;
  let i = from;
  for (; i < length; i++) {
    const c = chunk[i]!;
    if (inString) {
      if (escaped) escaped = false;
      else if (c === Byte.Backslash) escaped = true;
      else if (c === Byte.Quote) inString = false;
    } else if (c === Byte.Quote) {
      inString = true;
    } else if (c === Byte.LBrace || c === Byte.LBracket) {
      depth++;
    } else if (c === Byte.RBrace || c === Byte.RBracket) {
      if (--depth === 1) break;
    } else if (c === Byte.LF) {
      multiline = true;
    }
  }
  return { stop: i, scan: { depth, inString, escaped, multiline } };
}
