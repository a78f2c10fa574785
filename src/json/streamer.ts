import { JsonLexer, Tok, type TokenType } from './lexer.ts';
import { JsonParseError, parseTokens, qemuString } from './parser.ts';
import { TokenList } from './tokens.ts';
import type { JsonValue } from './value.ts';

/** Limits on one incoming message. The defaults are QEMU's own. */
export interface JsonLimits {
  /** Bytes of token text in one message, and in one token. QEMU: 64 MiB. */
  maxMessageSize: number;
  /** Tokens in one message. QEMU: 2 Mi. */
  maxTokens: number;
  /** Open brackets and braces at once. QEMU: 1024. */
  maxNesting: number;
}

export const QEMU_JSON_LIMITS: Readonly<JsonLimits> = Object.freeze({
  maxMessageSize: 64 * 1024 * 1024,
  maxTokens: 2 * 1024 * 1024,
  maxNesting: 1024,
});

/** One input message: a parsed value, or the error text QEMU would report. */
export type Incoming = { value: JsonValue; error?: undefined } | { value?: undefined; error: string };

/**
 * QEMU's JSON message streamer: splits a byte stream into messages by
 * counting braces and brackets (no newline needed), enforces the limits, and
 * parses each message as soon as it is complete. Pure: fed bytes, it calls
 * `onMessage` synchronously.
 */
export class JsonStreamer {
  private readonly lexer: JsonLexer;
  private readonly tokens = new TokenList();
  private braces = 0;
  private brackets = 0;
  private size = 0;
  /** Messages still to be read in this `feed`. */
  private budget = Infinity;

  constructor(
    private readonly onMessage: (message: Incoming) => void,
    private limits: Readonly<JsonLimits> = QEMU_JSON_LIMITS,
  ) {
    this.lexer = new JsonLexer({ token: (type, start, end) => this.token(type, start, end) }, limits.maxMessageSize);
  }

  /**
   * Reads `chunk`, stopping after `maxMessages` messages (errors count);
   * returns how many bytes were read. The rest is fed later, whole or in
   * any pieces, with the same result as if it had not been cut.
   */
  feed(chunk: Uint8Array, maxMessages = Infinity): number {
    this.budget = maxMessages;
    return this.lexer.feed(chunk);
  }

  /** Ends the current `feed` after the message just read (called from `onMessage`). */
  stop(): void {
    this.lexer.stop();
  }

  /** New limits (changed by a reload), from the next byte on. */
  setLimits(limits: Readonly<JsonLimits>): void {
    this.limits = limits;
    this.lexer.setMaxTokenSize(limits.maxMessageSize);
  }

  /** Bytes held for the message being read (its token text so far). */
  get heldBytes(): number {
    return this.lexer.held;
  }

  private token(type: TokenType, start: number, end: number): boolean {
    switch (type) {
      case Tok.LCurly: this.braces++; break;
      case Tok.RCurly: this.braces--; break;
      case Tok.LSquare: this.brackets++; break;
      case Tok.RSquare: this.brackets--; break;
      case Tok.Error: {
        const text = this.lexer.text.subarray(start, end);
        return this.finish({ error: `JSON parse error, stray '${qemuString(text)}'` });
      }
      default: break;
    }
    const length = end - start;
    if (this.size + length + 1 > this.limits.maxMessageSize) {
      return this.finish({ error: 'JSON token size limit exceeded' });
    }
    if (this.tokens.count + 1 > this.limits.maxTokens) {
      return this.finish({ error: 'JSON token count limit exceeded' });
    }
    if (this.braces + this.brackets > this.limits.maxNesting) {
      return this.finish({ error: 'JSON nesting depth limit exceeded' });
    }
    const t = this.tokens;
    t.push(type, start, end);
    this.size += length;
    if ((this.braces > 0 || this.brackets > 0) && this.braces >= 0 && this.brackets >= 0) return false;

    t.text = this.lexer.text;
    let message: Incoming;
    try {
      message = { value: parseTokens(t) };
    } catch (e) {
      if (!(e instanceof JsonParseError)) throw e;
      message = { error: e.desc };
    }
    return this.finish(message);
  }

  private finish(message: Incoming): true {
    this.braces = 0;
    this.brackets = 0;
    this.size = 0;
    this.tokens.clear();
    if (--this.budget <= 0) this.lexer.stop();
    this.onMessage(message);
    return true;
  }
}
