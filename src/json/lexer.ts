/**
 * QEMU's JSON lexer, byte for byte: the same token grammar (single-quoted
 * strings, `\'`), the same one-character lookahead for numbers and keywords,
 * and the same error recovery, so that every byte stream produces the same
 * tokens and the same `stray '...'` errors as a real QEMU monitor.
 */

/** Token types. Values above the lexer's states so both fit one table. */
export const Tok = {
  Error: 0,
  LCurly: 100,
  RCurly: 101,
  LSquare: 102,
  RSquare: 103,
  Colon: 104,
  Comma: 105,
  Integer: 106,
  Float: 107,
  Keyword: 108,
  String: 109,
  /** A token that grew past the size limit while still incomplete. */
  Oversize: 110,
} as const;
export type TokenType = (typeof Tok)[keyof typeof Tok];

const S = {
  Recovery: 1,
  DqEscape: 2,
  Dq: 3,
  SqEscape: 4,
  Sq: 5,
  Zero: 6,
  ExpDigits: 7,
  ExpSign: 8,
  ExpE: 9,
  Mantissa: 10,
  MantissaDigits: 11,
  Digits: 12,
  Sign: 13,
  Keyword: 14,
  Start: 15,
} as const;
const STATES = 16;
const TOKEN_MIN = Tok.LCurly;
/** Set on a transition that does not consume the current byte. */
const LOOKAHEAD = 0x80;

/** Transition table: `TABLE[state * 256 + byte]`; unset entries mean Tok.Error. */
const TABLE = buildTable();

function buildTable(): Uint8Array {
  const t = new Uint8Array(STATES * 256);
  const set = (state: number, from: number, to: number, next: number): void => {
    t.fill(next, state * 256 + from, state * 256 + to + 1);
  };
  const on = (state: number, chars: string, next: number): void => {
    for (const c of chars) t[state * 256 + c.charCodeAt(0)] = next;
  };
  const digits = '0123456789';
  const lower = 'abcdefghijklmnopqrstuvwxyz';
  const terminal = (state: number, token: number): void => set(state, 0, 255, token | LOOKAHEAD);

  // Recovery skips to a byte that can plausibly start fresh input; control
  // characters and 0xFE/0xFF are there so a client can force a resync.
  set(S.Recovery, 0x00, 0x1f, S.Start | LOOKAHEAD);
  set(S.Recovery, 0x20, 0xfd, S.Recovery);
  set(S.Recovery, 0xfe, 0xff, S.Start | LOOKAHEAD);
  on(S.Recovery, '\t', S.Recovery);
  on(S.Recovery, '[]{}:,', S.Start | LOOKAHEAD);

  set(S.DqEscape, 0x20, 0xfd, S.Dq);
  set(S.Dq, 0x20, 0xfd, S.Dq);
  on(S.Dq, '\\', S.DqEscape);
  on(S.Dq, '"', Tok.String);
  set(S.SqEscape, 0x20, 0xfd, S.Sq);
  set(S.Sq, 0x20, 0xfd, S.Sq);
  on(S.Sq, '\\', S.SqEscape);
  on(S.Sq, "'", Tok.String);

  terminal(S.Zero, Tok.Integer);
  on(S.Zero, digits, Tok.Error);
  on(S.Zero, '.', S.Mantissa);
  terminal(S.ExpDigits, Tok.Float);
  on(S.ExpDigits, digits, S.ExpDigits);
  on(S.ExpSign, digits, S.ExpDigits);
  on(S.ExpE, '+-', S.ExpSign);
  on(S.ExpE, digits, S.ExpDigits);
  terminal(S.MantissaDigits, Tok.Float);
  on(S.MantissaDigits, digits, S.MantissaDigits);
  on(S.MantissaDigits, 'eE', S.ExpE);
  on(S.Mantissa, digits, S.MantissaDigits);
  terminal(S.Digits, Tok.Integer);
  on(S.Digits, digits, S.Digits);
  on(S.Digits, 'eE', S.ExpE);
  on(S.Digits, '.', S.Mantissa);
  on(S.Sign, '0', S.Zero);
  on(S.Sign, '123456789', S.Digits);
  terminal(S.Keyword, Tok.Keyword);
  on(S.Keyword, lower, S.Keyword);

  on(S.Start, '"', S.Dq);
  on(S.Start, "'", S.Sq);
  on(S.Start, '0', S.Zero);
  on(S.Start, '123456789', S.Digits);
  on(S.Start, '-', S.Sign);
  on(S.Start, '{', Tok.LCurly);
  on(S.Start, '}', Tok.RCurly);
  on(S.Start, '[', Tok.LSquare);
  on(S.Start, ']', Tok.RSquare);
  on(S.Start, ',', Tok.Comma);
  on(S.Start, ':', Tok.Colon);
  on(S.Start, lower, S.Keyword);
  on(S.Start, ' \t\r\n', S.Start);
  return t;
}

/** Receives tokens; the text is `lexer.text[0, length)`, until the next byte is fed. */
export interface TokenSink {
  token(type: TokenType, length: number): void;
}

const INITIAL_CAPACITY = 512;
const KEEP_CAPACITY = 64 * 1024;

export class JsonLexer {
  /** Text of the token being read: the sink takes each token as it ends, so no more is kept. */
  text: Uint8Array = new Uint8Array(0);
  private len = 0;
  private state: number = S.Start;
  /** Set by the sink: stop once the byte being read is done. */
  private stopRequested = false;

  constructor(
    private readonly sink: TokenSink,
    /** Longest single token in bytes; QEMU's is 64 MiB. */
    private maxTokenSize: number,
  ) {}

  /**
   * Reads `chunk`, up to its end or until the sink asks to stop (see
   * `stop`); returns how many bytes were read. Stopping never splits a
   * byte's work, so the rest can be fed later as if never interrupted.
   */
  feed(chunk: Uint8Array): number {
    const table = TABLE;
    let state = this.state;
    for (let i = 0; i < chunk.length; i++) {
      const ch = chunk[i]!;
      for (;;) {
        const entry = table[state * 256 + ch]!;
        const next = entry & ~LOOKAHEAD;
        const consumed = (entry & LOOKAHEAD) === 0;
        if (consumed) {
          if (this.len === this.text.length) this.grow();
          this.text[this.len++] = ch;
        }
        if (next >= TOKEN_MIN) {
          this.emit(next as TokenType);
          state = S.Start;
        } else if (next === Tok.Error) {
          this.emit(Tok.Error);
          state = S.Recovery;
        } else if (next === S.Start || next === S.Recovery) {
          this.len = 0;
          state = next;
        } else {
          state = next;
        }
        if (consumed) break;
      }
      if (this.len > this.maxTokenSize) {
        this.emit(Tok.Oversize);
        state = S.Start;
      }
      if (this.stopRequested) {
        this.stopRequested = false;
        this.state = state;
        return i + 1;
      }
    }
    this.state = state;
    return chunk.length;
  }

  /** A new bound on one token (limits changed by a reload), from the next byte on. */
  setMaxTokenSize(bytes: number): void {
    this.maxTokenSize = bytes;
  }

  /** Bytes of text held for the token being read. */
  get held(): number {
    return this.len;
  }

  /** Stops `feed` after the byte it is reading. */
  stop(): void {
    this.stopRequested = true;
  }

  private emit(type: TokenType): void {
    this.sink.token(type, this.len);
    this.len = 0;
    // The room a big token took is given back.
    if (this.text.length > KEEP_CAPACITY) this.text = new Uint8Array(INITIAL_CAPACITY);
  }

  private grow(): void {
    const bigger = new Uint8Array(Math.max(INITIAL_CAPACITY, this.text.length * 2));
    bigger.set(this.text.subarray(0, this.len));
    this.text = bigger;
  }
}
