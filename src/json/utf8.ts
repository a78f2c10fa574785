/**
 * Modified UTF-8 as QEMU's JSON parser and writer understand it: standard
 * UTF-8, except that the overlong two-byte form of U+0000 (C0 80) is valid,
 * and surrogates, noncharacters and code points past U+10FFFF are not.
 */

/** Whether QEMU accepts `cp` as a character (U+0000 included). */
export function isValidCodepoint(cp: number): boolean {
  if (cp > 0x10ffff) return false;
  if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) return false;
  return cp < 0xd800 || cp > 0xdfff;
}

const MIN_CODEPOINT = [0x80, 0x800, 0x10000, 0x200000, 0x4000000];

/**
 * Decodes the sequence starting at `bytes[pos]`, reading no further than
 * `end`. Returns the code point, or -1 for an invalid sequence; in both
 * cases `decoded.next` is where the following sequence starts, with the same
 * skipping rule as QEMU (so an invalid run maps to the same number of
 * replacement characters).
 */
export function decodeCodepoint(bytes: Uint8Array, pos: number, end: number, decoded: { next: number }): number {
  if (pos >= end || bytes[pos] === 0) {
    decoded.next = pos;
    return -1;
  }
  const lead = bytes[pos]!;
  let p = pos + 1;
  if (lead < 0x80) {
    decoded.next = p;
    return lead;
  }
  if (lead >= 0xfe || (lead & 0x40) === 0) {
    decoded.next = p;
    return -1;
  }
  let len = 0;
  let mask = 0x80;
  while (lead & mask) {
    len++;
    mask >>= 1;
  }
  let cp = lead & (mask - 1);
  for (let i = 1; i < len; i++) {
    const b = p < end ? bytes[p]! : 0;
    if ((b & 0xc0) !== 0x80) {
      decoded.next = p;
      return -1;
    }
    p++;
    cp = cp * 64 + (b & 0x3f);
  }
  decoded.next = p;
  if (!isValidCodepoint(cp)) return -1;
  if (cp < MIN_CODEPOINT[len - 2]! && !(cp === 0 && len === 2)) return -1;
  return cp;
}

/** Appends `cp` to `out` as UTF-16 code units. */
export function pushCodepoint(out: number[], cp: number): void {
  if (cp > 0xffff) {
    out.push(0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff));
  } else {
    out.push(cp);
  }
}

/**
 * The bytes QEMU uses for a string internally: UTF-8 with U+0000 as C0 80.
 * QEMU hashes and compares these bytes, so dictionary order depends on them.
 */
export function modifiedUtf8(s: string): Uint8Array {
  const plain = Buffer.from(s, 'utf8');
  if (!s.includes('\0')) return plain;
  const out: number[] = [];
  for (const b of plain) {
    if (b === 0) out.push(0xc0, 0x80);
    else out.push(b);
  }
  return Uint8Array.from(out);
}
