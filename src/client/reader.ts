import { JsonLexer, Tok, type TokenType } from '../json/lexer.ts';
import { JsonParser } from '../json/parser.ts';
import { qemuString } from '../json/strings.ts';
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
  private readonly parser = new JsonParser();
  /** Bytes of the message's tokens so far. */
  private length = 0;
  private depth = 0;

  constructor(
    private readonly onMessage: (value: JsonValue) => void,
    /** What the server sent is not JSON, or too large; what follows may not be readable either. */
    private readonly onError: (desc: string) => void,
    /** Longest message accepted, in bytes. */
    private readonly maxMessageSize: number = DEFAULT_MAX_MESSAGE,
  ) {
    this.lexer = new JsonLexer({ token: (type, length) => this.token(type, length) }, maxMessageSize);
  }

  feed(chunk: Uint8Array): void {
    this.lexer.feed(chunk);
  }

  private token(type: TokenType, length: number): void {
    const text = this.lexer.text.subarray(0, length);
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
    if (this.depth > 0) return;

    const message = this.parser.end();
    this.reset();
    if (message.error !== undefined) this.onError(message.error);
    else this.onMessage(message.value);
  }

  private push(type: TokenType, bytes: Uint8Array): void {
    this.parser.token(type, bytes, 0, bytes.length);
    this.length += bytes.length;
  }

  private fail(desc: string): void {
    this.reset();
    this.onError(desc);
  }

  private reset(): void {
    this.parser.reset();
    this.length = 0;
    this.depth = 0;
  }
}

/** QEMU's own input limit, so anything QEMU could be sent it may also send. */
export const DEFAULT_MAX_MESSAGE = 64 * 1024 * 1024;

const NON_FINITE_WORDS = new Set(['inf', 'nan']);
const NON_FINITE_STRAYS = new Map([['-i', '-inf'], ['-n', '-nan']]);

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
}
