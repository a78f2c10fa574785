import { JsonLexer, Tok, type TokenType } from '../json/lexer.ts';
import { JsonParseError, parseTokens, qemuString } from '../json/parser.ts';
import { TokenList } from '../json/tokens.ts';
import type { JsonValue } from '../json/value.ts';

/**
 * Reads what a QMP server writes: JSON values, one after another, split on
 * value boundaries rather than lines (a `pretty=on` monitor spans lines).
 * Numbers keep their text, so 64-bit integers survive. QEMU prints doubles
 * with `%.17g`, so an infinite or undefined one arrives as the non-JSON
 * token `inf`, `-inf`, `nan` or `-nan`; those are read as numbers with that
 * text. Pure: fed bytes, it calls back synchronously.
 *
 * It reuses QEMU's lexer. That lexer has no token for `-inf`: it reports
 * `-i` as a stray and skips the rest of the word, so `-i` and `-n` strays
 * are taken for `-inf` and `-nan` (a server is trusted to write its numbers;
 * anything else stray is an error).
 */
export class QmpReader {
  private readonly lexer: JsonLexer;
  private readonly tokens = new TokenList();
  /** The message's text: the lexer's holds one token at a time here. */
  private text = new Uint8Array(INITIAL_CAPACITY);
  private length = 0;
  private depth = 0;

  constructor(
    private readonly onMessage: (value: JsonValue) => void,
    /** What the server sent is not JSON, or too large; what follows may not be readable either. */
    private readonly onError: (desc: string) => void,
    /** Longest message accepted, in bytes. */
    private readonly maxMessageSize: number = DEFAULT_MAX_MESSAGE,
  ) {
    this.lexer = new JsonLexer({ token: (type, start, end) => this.token(type, start, end) }, maxMessageSize);
  }

  feed(chunk: Uint8Array): void {
    this.lexer.feed(chunk);
  }

  private token(type: TokenType, start: number, end: number): true {
    const text = this.lexer.text.subarray(start, end);
    switch (type) {
      case Tok.Error: {
        const nonFinite = NON_FINITE_STRAYS.get(latin1(text));
        if (nonFinite === undefined) return this.fail(`JSON parse error, stray '${qemuString(text)}'`);
        this.push(Tok.Float, Buffer.from(nonFinite, 'latin1'));
        break;
      }
      case Tok.Oversize:
        return this.fail(`message larger than ${this.maxMessageSize} bytes`);
      case Tok.Keyword:
        this.push(NON_FINITE_WORDS.has(latin1(text)) ? Tok.Float : type, text);
        break;
      case Tok.LCurly:
      case Tok.LSquare:
        this.depth++;
        this.push(type, text);
        break;
      case Tok.RCurly:
      case Tok.RSquare:
        this.depth--;
        this.push(type, text);
        break;
      default:
        this.push(type, text);
    }
    if (this.length > this.maxMessageSize) return this.fail(`message larger than ${this.maxMessageSize} bytes`);
    if (this.depth > 0) return true;

    const t = this.tokens;
    t.text = this.text;
    let value: JsonValue;
    try {
      value = parseTokens(t);
    } catch (e) {
      if (!(e instanceof JsonParseError)) throw e;
      return this.fail(e.desc);
    }
    this.reset();
    this.onMessage(value);
    return true;
  }

  private push(type: TokenType, bytes: Uint8Array): void {
    if (this.length + bytes.length > this.text.length) {
      const bigger = new Uint8Array(Math.max(this.text.length * 2, this.length + bytes.length));
      bigger.set(this.text.subarray(0, this.length));
      this.text = bigger;
    }
    this.text.set(bytes, this.length);
    this.tokens.push(type, this.length, this.length + bytes.length);
    this.length += bytes.length;
  }

  private fail(desc: string): true {
    this.reset();
    this.onError(desc);
    return true;
  }

  private reset(): void {
    this.tokens.clear();
    this.length = 0;
    this.depth = 0;
    if (this.text.length > KEEP_CAPACITY) this.text = new Uint8Array(INITIAL_CAPACITY);
  }
}

/** QEMU's own input limit, so anything QEMU could be sent it may also send. */
export const DEFAULT_MAX_MESSAGE = 64 * 1024 * 1024;
const INITIAL_CAPACITY = 4096;
const KEEP_CAPACITY = 1024 * 1024;

const NON_FINITE_WORDS = new Set(['inf', 'nan']);
const NON_FINITE_STRAYS = new Map([['-i', '-inf'], ['-n', '-nan']]);

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
}
