import type { TokenType } from './lexer.ts';

/** Tokens a list starts with room for, and keeps room for once a large message is done. */
const INITIAL_CAPACITY = 16;
const KEEP_CAPACITY = 1024;
const NO_TEXT = new Uint8Array(0);

/**
 * The tokens of one message: type and text span of each, in typed arrays
 * (nine bytes a token; a message of one-digit numbers is a token every two
 * bytes, so what a message still being sent holds stays a small multiple
 * of its size). The text itself is the lexer's.
 */
export class TokenList {
  types = new Uint8Array(INITIAL_CAPACITY);
  starts = new Uint32Array(INITIAL_CAPACITY);
  ends = new Uint32Array(INITIAL_CAPACITY);
  count = 0;
  /** The text the spans point into. */
  text: Uint8Array = NO_TEXT;

  push(type: TokenType, start: number, end: number): void {
    if (this.count === this.types.length) this.grow(this.count * 2);
    this.types[this.count] = type;
    this.starts[this.count] = start;
    this.ends[this.count] = end;
    this.count++;
  }

  /** Forgets every token; room a large message took is given back. */
  clear(): void {
    this.count = 0;
    this.text = NO_TEXT;
    if (this.types.length > KEEP_CAPACITY) this.grow(INITIAL_CAPACITY);
  }

  private grow(capacity: number): void {
    const { types, starts, ends, count } = this;
    this.types = new Uint8Array(capacity);
    this.starts = new Uint32Array(capacity);
    this.ends = new Uint32Array(capacity);
    if (count > 0) {
      this.types.set(types.subarray(0, count));
      this.starts.set(starts.subarray(0, count));
      this.ends.set(ends.subarray(0, count));
    }
  }
}
