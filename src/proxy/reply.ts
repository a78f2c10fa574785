import { EOL } from '../qmp/messages.ts';
import type { IdMember } from '../qmp/upstream-framer.ts';

const EOL_BYTES = Buffer.from(EOL, 'latin1');

/**
 * A reply from QEMU made into the reply the client gets: qmp-mux's id
 * replaced by the client's (already serialized as QEMU would echo it), or
 * the id member removed when the client sent none. Only the id bytes change.
 */
export function restoreId(bytes: Buffer, id: IdMember, idText: string | undefined): Buffer {
  if (idText === undefined) {
    let cutFrom: number;
    let cutTo: number;
    if (id.comma >= 0) {
      cutFrom = id.comma;
      cutTo = id.valueEnd;
    } else {
      cutFrom = id.keyStart;
      cutTo = id.nextKey >= 0 ? id.nextKey : id.valueEnd;
    }
    return join(bytes, cutFrom, cutTo, '');
  }
  return join(bytes, id.valueStart, id.valueEnd, idText);
}

function join(bytes: Buffer, cutFrom: number, cutTo: number, insert: string): Buffer {
  const insertLength = Buffer.byteLength(insert, 'latin1');
  const out = Buffer.allocUnsafe(cutFrom + insertLength + (bytes.length - cutTo) + EOL_BYTES.length);
  bytes.copy(out, 0, 0, cutFrom);
  let n = cutFrom;
  if (insertLength > 0) n += out.write(insert, n, 'latin1');
  n += bytes.copy(out, n, cutTo);
  EOL_BYTES.copy(out, n);
  return out;
}
