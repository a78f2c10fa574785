import { Tok, type TokenType } from './lexer.ts';
import { invalid, Invalid, keyword, latin1, stringToken } from './strings.ts';
import { JsonNumber, type JsonObject, type JsonValue } from './value.ts';

/** One message: a parsed value, or the error text QEMU would report. */
export type Incoming = { value: JsonValue; error?: undefined } | { value?: undefined; error: string };

/**
 * What the parser expects next. Where a container was opened, its parent's
 * state is kept on the stack: it says what the finished container is (the
 * message, an item, a key, a member's value).
 */
const S = {
  /** The message's value. */
  Top: 0,
  /** The message's value is complete. */
  Done: 1,
  /** After `[`: an item or `]`. */
  ListFirst: 2,
  /** After a `,` in a list: an item. */
  ListItem: 3,
  /** After an item: `,` or `]`. */
  ListNext: 4,
  /** After `{`: a key or `}`. */
  DictFirst: 5,
  /** After a `,` in a dict: a key. */
  DictKey: 6,
  /** After a key: `:`. */
  DictColon: 7,
  /** After `:`: the member's value. */
  DictValue: 8,
  /** After a member: `,` or `}`. */
  DictNext: 9,
} as const;

/**
 * What the partial value costs the heap, bytes, an upper estimate per part
 * (Node 20 x64; measured as memory.ts says): a number (object and text,
 * plus its length), a string (plus two bytes a character), a list's or
 * dict's slot (with the slack of its growing by half), the 16 slots a list
 * grows by at its second item, an empty list and an empty dict (a Map
 * starts with a table of four members).
 */
export const VALUE_COST = { number: 64, string: 24, slot: 16, grown: 136, member: 48, list: 48, dict: 208 } as const;

/**
 * QEMU's JSON parser, fed a token at a time: builds the value as the
 * tokens come (a stack of open containers instead of recursion), so a
 * message's last token finishes it at once. Same grammar and error texts as
 * QEMU's recursive descent, in the same order: the first error of a message
 * is the one reported, when the message ends, and the tokens after it are
 * not parsed (the partial value is dropped).
 */
export class JsonParser {
  private state: number = S.Top;
  /** Parent states of the open containers, innermost last; `containers` and `keys` alongside. */
  private readonly states: number[] = [];
  private readonly containers: (JsonValue[] | JsonObject)[] = [];
  /** The key of the member whose value is being read, per open dict. */
  private readonly keys: string[] = [];
  private key = '';
  private result: JsonValue = null;
  private error: string | undefined;
  /** Estimated heap bytes of the partial value (see VALUE_COST). */
  held = 0;

  /** The message's next token, `text[start, end)`. */
  token(type: TokenType, text: Uint8Array, start: number, end: number): void {
    if (this.error !== undefined) return;
    switch (this.state) {
      case S.ListFirst:
        if (type === Tok.RSquare) return this.close();
        return this.value(type, text, start, end);
      case S.DictFirst:
        if (type === Tok.RCurly) return this.close();
        return this.value(type, text, start, end);
      case S.ListNext:
        if (type === Tok.RSquare) return this.close();
        if (type !== Tok.Comma) return this.fail(invalid('expected separator in list'));
        this.state = S.ListItem;
        return;
      case S.DictNext:
        if (type === Tok.RCurly) return this.close();
        if (type !== Tok.Comma) return this.fail(invalid('expected separator in dict'));
        this.state = S.DictKey;
        return;
      case S.DictColon:
        if (type !== Tok.Colon) return this.fail(invalid('missing : in object pair'));
        this.state = S.DictValue;
        return;
      case S.Done:
        // A value completes only on the token that balances the message, so nothing follows it.
        return;
      default:
        return this.value(type, text, start, end);
    }
  }

  /** The message has ended: its value, or its first error. */
  end(): Incoming {
    if (this.error !== undefined) return { error: this.error };
    return this.state === S.Done ? { value: this.result } : { error: invalid('premature EOI').desc };
  }

  /** Forgets the message, ended or abandoned, for the next. */
  reset(): void {
    this.state = S.Top;
    // A message that ended complete left its stacks empty; only one abandoned midway needs them cleared.
    if (this.containers.length > 0) {
      this.states.length = 0;
      this.containers.length = 0;
      this.keys.length = 0;
    }
    this.result = null;
    this.error = undefined;
    this.held = 0;
  }

  private value(type: TokenType, text: Uint8Array, start: number, end: number): void {
    let v: JsonValue | Invalid;
    switch (type) {
      case Tok.LCurly:
        this.held += VALUE_COST.dict;
        return this.open(new Map(), S.DictFirst);
      case Tok.LSquare:
        this.held += VALUE_COST.list;
        return this.open([], S.ListFirst);
      case Tok.String:
        v = stringToken(text, start, end);
        // Two bytes a character at most, UTF-16, for what was at least a byte.
        if (typeof v === 'string') this.held += VALUE_COST.string + 2 * v.length;
        break;
      case Tok.Integer:
      case Tok.Float:
        v = new JsonNumber(latin1(text, start, end), type === Tok.Integer);
        this.held += VALUE_COST.number + (end - start);
        break;
      case Tok.Keyword:
        v = keyword(text, start, end);
        break;
      default:
        v = invalid('expecting value');
    }
    if (v instanceof Invalid) return this.fail(v);
    this.complete(v);
  }

  private open(container: JsonValue[] | JsonObject, state: number): void {
    this.states.push(this.state);
    this.containers.push(container);
    this.keys.push(this.key);
    this.state = state;
  }

  private close(): void {
    const container = this.containers.pop()!;
    this.state = this.states.pop()!;
    this.key = this.keys.pop()!;
    this.complete(container);
  }

  /** `v` is complete: it becomes what the state was waiting for. */
  private complete(v: JsonValue): void {
    switch (this.state) {
      case S.Top:
        this.result = v;
        this.state = S.Done;
        return;
      case S.ListFirst:
        // A list made with its first item has room for it alone; pushed onto `[]`, it would get 16 slots.
        this.containers[this.containers.length - 1] = [v];
        this.held += VALUE_COST.slot;
        this.state = S.ListNext;
        return;
      case S.ListItem: {
        const list = this.containers[this.containers.length - 1] as JsonValue[];
        this.held += list.length === 1 ? VALUE_COST.grown : VALUE_COST.slot;
        list.push(v);
        this.state = S.ListNext;
        return;
      }
      case S.DictFirst:
      case S.DictKey:
        if (typeof v !== 'string') return this.fail(invalid('key is not a string in object'));
        this.key = v;
        this.state = S.DictColon;
        return;
      default: {
        // S.DictValue: QEMU looks for a duplicate once the value is parsed.
        const dict = this.containers[this.containers.length - 1] as JsonObject;
        if (dict.has(this.key)) return this.fail(invalid('duplicate key'));
        dict.set(this.key, v);
        this.held += VALUE_COST.member;
        this.state = S.DictNext;
      }
    }
  }

  /** The message's first error: it is all that is kept of it. */
  private fail(e: Invalid): void {
    this.reset();
    this.error = e.desc;
  }
}
