import { JsonLexer, Tok, type TokenType } from './lexer.ts';
import { JsonParser, type Incoming } from './parser.ts';
import { qemuString } from './strings.ts';

export type { Incoming } from './parser.ts';

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

/**
 * QEMU's JSON message streamer: splits a byte stream into messages by
 * counting braces and brackets (no newline needed), enforces the limits, and
 * parses each message as its tokens come, so a message's last byte costs
 * no more than any other. Pure: fed bytes, it calls `onMessage`
 * synchronously.
 */
export class JsonStreamer {
  private readonly lexer: JsonLexer;
  private readonly parser = new JsonParser();
  private tokens = 0;
  private braces = 0;
  private brackets = 0;
  private size = 0;
  /** Messages still to be read in this `feed`. */
  private budget = Infinity;

  constructor(
    private readonly onMessage: (message: Incoming) => void,
    private limits: Readonly<JsonLimits> = QEMU_JSON_LIMITS,
  ) {
    this.lexer = new JsonLexer({ token: (type, length) => this.token(type, length) }, limits.maxMessageSize);
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

  /**
   * Bytes held for the message being read, an upper estimate: the text of
   * the token being read, and the value parsed so far.
   */
  get heldBytes(): number {
    return this.lexer.held + this.parser.held;
  }

  private token(type: TokenType, length: number): void {
    switch (type) {
      case Tok.LCurly: this.braces++; break;
      case Tok.RCurly: this.braces--; break;
      case Tok.LSquare: this.brackets++; break;
      case Tok.RSquare: this.brackets--; break;
      case Tok.Error: {
        const text = this.lexer.text.subarray(0, length);
        return this.finish({ error: `JSON parse error, stray '${qemuString(text)}'` });
      }
      default: break;
    }
    if (this.size + length + 1 > this.limits.maxMessageSize) {
      return this.finish({ error: 'JSON token size limit exceeded' });
    }
    if (this.tokens + 1 > this.limits.maxTokens) {
      return this.finish({ error: 'JSON token count limit exceeded' });
    }
    if (this.braces + this.brackets > this.limits.maxNesting) {
      return this.finish({ error: 'JSON nesting depth limit exceeded' });
    }
    this.tokens++;
    this.size += length;
    this.parser.token(type, this.lexer.text, 0, length);
    if ((this.braces > 0 || this.brackets > 0) && this.braces >= 0 && this.brackets >= 0) return;
    this.finish(this.parser.end());
  }

  private finish(message: Incoming): void {
    this.braces = 0;
    this.brackets = 0;
    this.size = 0;
    this.tokens = 0;
    this.parser.reset();
    if (--this.budget <= 0) this.lexer.stop();
    this.onMessage(message);
  }
}
