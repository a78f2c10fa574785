import type { JsonNumber } from './value.ts';

/**
 * How QEMU prints a number it has parsed: integers that fit int64 or uint64
 * exactly, everything else through a double with printf's `%.17g`
 * (`1e400` becomes the non-JSON token `inf`, as QEMU really writes it).
 */
export function qemuNumberText(n: JsonNumber): string {
  if (n.integer) {
    const big = BigInt(n.text);
    if (big >= INT64_MIN && big <= UINT64_MAX) return big.toString();
  }
  return formatG17(Number(n.text));
}

const INT64_MIN = -(1n << 63n);
const UINT64_MAX = (1n << 64n) - 1n;

/** C's `printf("%.17g", x)` with glibc's exact, round-half-even conversion. */
export function formatG17(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const sign = x < 0 ? '-' : '';
  const { digits, pointAt } = exactDecimal(Math.abs(x));
  const rounded = roundHalfEven(digits, 17);
  const exp10 = pointAt - 1 + rounded.carry;
  const sig = rounded.digits.replace(/0+$/, '') || '0';
  if (exp10 < -4 || exp10 >= 17) {
    const mantissa = sig.length > 1 ? `${sig[0]}.${sig.slice(1)}` : sig;
    const e = Math.abs(exp10);
    return `${sign}${mantissa}e${exp10 < 0 ? '-' : '+'}${e < 10 ? '0' : ''}${e}`;
  }
  if (exp10 < 0) return `${sign}0.${'0'.repeat(-exp10 - 1)}${sig}`;
  const intLen = exp10 + 1;
  if (sig.length <= intLen) return sign + sig + '0'.repeat(intLen - sig.length);
  return `${sign}${sig.slice(0, intLen)}.${sig.slice(intLen)}`;
}

/** All decimal digits of a positive finite double, and where its decimal point falls. */
function exactDecimal(x: number): { digits: string; pointAt: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const biased = (hi >>> 20) & 0x7ff;
  let mantissa = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let exp2: number;
  if (biased === 0) {
    exp2 = -1074;
  } else {
    mantissa |= 1n << 52n;
    exp2 = biased - 1075;
  }
  if (exp2 >= 0) {
    const digits = (mantissa << BigInt(exp2)).toString();
    return { digits, pointAt: digits.length };
  }
  // x = mantissa / 2^k = mantissa * 5^k / 10^k
  const k = -exp2;
  const digits = (mantissa * 5n ** BigInt(k)).toString();
  return { digits, pointAt: digits.length - k };
}

/** Rounds a digit string without leading zeros to `keep` significant digits. */
function roundHalfEven(digits: string, keep: number): { digits: string; carry: number } {
  if (digits.length <= keep) return { digits, carry: 0 };
  const head = digits.slice(0, keep);
  const next = digits.charCodeAt(keep) - 48;
  const restNonZero = /[1-9]/.test(digits.slice(keep + 1));
  const lastOdd = (head.charCodeAt(keep - 1) - 48) % 2 === 1;
  const up = next > 5 || (next === 5 && (restNonZero || lastOdd));
  if (!up) return { digits: head, carry: 0 };
  const bumped = (BigInt(head) + 1n).toString();
  if (bumped.length > keep) return { digits: bumped.slice(0, keep), carry: 1 };
  return { digits: bumped, carry: 0 };
}
