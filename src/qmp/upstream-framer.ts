import { Byte } from './bytes.ts';

/**
 * Frames what QEMU writes. Unlike client input this is trusted to be QEMU's
 * own output, and it is not always JSON (`"id": inf` for an id of 1e400),
 * so the framer does not parse values: it finds where each top-level object
 * ends, which of the members qmp-mux cares about it has, and where the `id`
 * member sits, so a reply can be routed and its id put right by splicing
 * bytes. Pretty-printed output (`-mon pretty=on`) is compacted to the
 * one-line form every client of a default monitor sees.
 *
 * A message longer than qmp-mux keeps is still followed to its end, so the
 * stream stays in step, but its bytes are dropped as they come: it is
 * passed on as `tooLarge`, with what routing it needs.
 */

export type UpstreamKind = 'greeting' | 'event' | 'return' | 'error' | 'unknown';

/** Where the top-level `id` member sits in a message, as byte offsets. */
export interface IdMember {
  /** The `,` before the member, or -1 when it is the first member. */
  comma: number;
  /** The key's opening quote. */
  keyStart: number;
  valueStart: number;
  /** Just after the value. */
  valueEnd: number;
  /** The next member's key's opening quote, or -1 when it is the last member. */
  nextKey: number;
}

export interface UpstreamMessage {
  /** One compact JSON object, without line terminator; for one `tooLarge`, its first bytes only. */
  bytes: Buffer;
  kind: UpstreamKind;
  id: IdMember | undefined;
  /** For an event, its name. */
  event: string | undefined;
  /** Set when the message was longer than the framer keeps: its bytes are gone. */
  tooLarge?: TooLargeMessage;
}

/** What is known of a message too long to keep. */
export interface TooLargeMessage {
  /** Its length in bytes. */
  length: number;
  /** The most the framer keeps. */
  limit: number;
  /**
   * Its top-level `id` when that is a small non-negative integer (one
   * qmp-mux could have given), -1 for any other id, undefined when it has none.
   */
  id: number | undefined;
}

/** How much of a message too long to keep is kept, for logs. */
const HEAD_BYTES = 256;

export interface UpstreamFramerEvents {
  message(message: UpstreamMessage): void;
  /** Bytes outside any object (QEMU never writes them). */
  garbage(bytes: Buffer): void;
}

/**
 * Where the framer is: `between` messages; at depth 1 expecting a `key` (or
 * the closing brace), in its `keyText`, expecting the `colon`, a `value`, in
 * a string value (`text`) or a `scalar`, or the `next` member; or inside a
 * `nested` object or array, which is skipped.
 */
type State = 'between' | 'key' | 'keyText' | 'colon' | 'value' | 'text' | 'scalar' | 'nested' | 'next';

const KIND_BY_KEY: Readonly<Record<string, UpstreamKind>> = { QMP: 'greeting', event: 'event', return: 'return', error: 'error' };
/** Member names are collected only as far as the longest one qmp-mux looks for. */
const KEY_LENGTH = 8;

const isSpace = (c: number): boolean => c === Byte.Space || c === Byte.LF || c === Byte.CR || c === Byte.Tab;

export class UpstreamFramer {
  private state: State = 'between';
  /** Bytes of the current message from earlier chunks. */
  private parts: Buffer[] = [];
  private partsLength = 0;
  /** In a string: the last byte was a backslash. */
  private escaped = false;
  /** In `nested`: brackets open, counting the top-level one; and whether in a string. */
  private depth = 0;
  private nestedString = false;
  /** The member being read: its name's start, and the name so far. */
  private keyStart = -1;
  private key = '';
  private lastComma = -1;
  private valueStart = -1;
  // What the message has shown so far.
  private kind: UpstreamKind = 'unknown';
  private id: IdMember | undefined;
  private event: { start: number; end: number } | undefined;
  private multiline = false;
  /** Bytes of the current message so far, those dropped included. */
  private length = 0;
  /** The current message is too long to keep: its first bytes, its id's digits as read, and its event name if read. */
  private dropping: { head: Buffer; id: string; event: string | undefined } | undefined;
  /** In a top-level `id` value that is a number. */
  private inIdNumber = false;

  constructor(
    private readonly events: UpstreamFramerEvents,
    /** Longest message kept, in bytes; a longer one is passed on as `tooLarge`. */
    private readonly maxMessageSize: number,
  ) {}

  /** Whether a message came over several lines (a `pretty=on` monitor). */
  sawMultiline = false;

  feed(chunk: Buffer): void {
    let start = this.state === 'between' ? -1 : 0;
    let garbageStart = -1;
    const length = chunk.length;
    for (let i = 0; i < length; i++) {
      const c = chunk[i]!;
      switch (this.state) {
        case 'between':
          if (c === Byte.LBrace) {
            if (garbageStart >= 0) this.events.garbage(chunk.subarray(garbageStart, i));
            garbageStart = -1;
            start = i;
            this.begin();
          } else if (!isSpace(c) && garbageStart < 0) {
            garbageStart = i;
          }
          break;
        case 'nested':
          i = this.skipNested(chunk, i, this.partsLength - start);
          break;
        case 'keyText':
        case 'text':
          if (this.escaped) this.escaped = false;
          else if (c === Byte.Backslash) this.escaped = true;
          else if (c === Byte.Quote) this.endString(this.partsLength + i - start);
          else if (this.state === 'keyText' && this.key.length < KEY_LENGTH) this.key += String.fromCharCode(c);
          break;
        case 'scalar':
          if (c !== Byte.Comma && c !== Byte.RBrace && !isSpace(c)) {
            if (this.inIdNumber && this.dropping && this.dropping.id.length <= 9) this.dropping.id += String.fromCharCode(c);
            break;
          }
          this.endValue(this.partsLength + i - start);
          i--; // the delimiter is the next state's
          break;
        default:
          if (c === Byte.LF) this.multiline = true;
          if (isSpace(c)) break;
          if (this.structure(c, this.partsLength + i - start)) {
            this.emit(chunk.subarray(start, i + 1));
            start = -1;
          }
      }
    }
    if (garbageStart >= 0) this.events.garbage(chunk.subarray(garbageStart));
    if (start >= 0) this.keep(chunk.subarray(start));
  }

  /** Forgets the current message. */
  private reset(): void {
    this.parts = [];
    this.partsLength = 0;
    this.length = 0;
    this.dropping = undefined;
    this.state = 'between';
  }

  /** The part of the current message in this chunk: kept, or, once it is too long, counted and dropped. */
  private keep(part: Buffer): void {
    this.length += part.length;
    if (this.dropping) return;
    this.parts.push(part);
    this.partsLength += part.length;
    if (this.partsLength > this.maxMessageSize) this.startDropping();
  }

  /** The current message is too long to keep: keep its head, and its id if that was read already. */
  private startDropping(): void {
    const held = Buffer.concat(this.parts, this.partsLength);
    let id = '';
    if (this.id && this.id.valueEnd >= 0) id = held.toString('latin1', this.id.valueStart, this.id.valueEnd);
    else if (this.inIdNumber) id = held.toString('latin1', this.valueStart);
    // QEMU writes an event's name before its data.
    const event = this.event ? held.toString('latin1', this.event.start + 1, this.event.end - 1) : undefined;
    this.dropping = { head: Buffer.from(held.subarray(0, HEAD_BYTES)), id, event };
    this.parts = [];
    // Positions in the message go on counting as if its bytes were kept.
    this.partsLength = held.length;
  }

  private begin(): void {
    this.state = 'key';
    this.length = 0;
    this.dropping = undefined;
    this.inIdNumber = false;
    this.escaped = false;
    this.lastComma = -1;
    this.kind = 'unknown';
    this.id = undefined;
    this.event = undefined;
    this.multiline = false;
  }

  /**
   * A structural byte at depth 1 (`pos` in the message). Returns true when
   * it closes the message. Anything QEMU would not write there is taken as
   * the start of a scalar, so the message still ends where it ends.
   */
  private structure(c: number, pos: number): boolean {
    switch (this.state) {
      case 'key':
        if (c === Byte.RBrace) return true;
        if (c === Byte.Quote) {
          this.state = 'keyText';
          this.keyStart = pos;
          this.key = '';
          if (this.id && this.id.nextKey < 0 && this.id.valueEnd >= 0) this.id.nextKey = pos;
        }
        return false;
      case 'colon':
        if (c === Byte.Colon) this.state = 'value';
        return false;
      case 'value':
        this.valueStart = pos;
        if (c === Byte.Quote) {
          this.state = 'text';
        } else if (c === Byte.LBrace || c === Byte.LBracket) {
          this.state = 'nested';
          this.depth = 2;
          this.nestedString = false;
        } else {
          this.state = 'scalar';
          this.inIdNumber = this.key === 'id' && this.id !== undefined && this.id.valueStart < 0;
          if (this.inIdNumber && this.dropping) this.dropping.id += String.fromCharCode(c);
        }
        return false;
      case 'next':
        if (c === Byte.Comma) {
          this.lastComma = pos;
          this.state = 'key';
          return false;
        }
        return c === Byte.RBrace;
      default:
        return false;
    }
  }

  private endString(pos: number): void {
    if (this.state === 'keyText') {
      this.state = 'colon';
      const kind = KIND_BY_KEY[this.key];
      if (kind !== undefined && this.kind === 'unknown') this.kind = kind;
      if (this.key === 'id') this.id = { comma: this.lastComma, keyStart: this.keyStart, valueStart: -1, valueEnd: -1, nextKey: -1 };
      return;
    }
    this.endValue(pos + 1);
  }

  /** The depth-1 value that started at `valueStart` ends just before `end`. */
  private endValue(end: number): void {
    this.state = 'next';
    this.inIdNumber = false;
    if (this.key === 'id' && this.id && this.id.valueStart < 0) {
      this.id.valueStart = this.valueStart;
      this.id.valueEnd = end;
    } else if (this.key === 'event' && this.kind === 'event' && this.event === undefined) {
      this.event = { start: this.valueStart, end };
    }
  }

  /**
   * Inside a nested value only brackets, strings and line feeds matter: a
   * tight loop over them (a 200 KB query-qmp-schema reply is mostly this).
   * `base` turns an index in `chunk` into a position in the message. Returns
   * the index of the last byte consumed.
   */
  private skipNested(chunk: Buffer, from: number, base: number): number {
    let depth = this.depth;
    let inString = this.nestedString;
    let escaped = this.escaped;
    const length = chunk.length;
    let i = from;
    for (; i < length; i++) {
      const c = chunk[i]!;
      if (inString) {
        if (escaped) escaped = false;
        else if (c === Byte.Backslash) escaped = true;
        else if (c === Byte.Quote) inString = false;
      } else if (c === Byte.Quote) {
        inString = true;
      } else if (c === Byte.LBrace || c === Byte.LBracket) {
        depth++;
      } else if (c === Byte.RBrace || c === Byte.RBracket) {
        if (--depth === 1) break;
      } else if (c === Byte.LF) {
        this.multiline = true;
      }
    }
    this.depth = depth;
    this.nestedString = inString;
    this.escaped = escaped;
    if (depth > 1) return length - 1;
    this.endValue(base + i + 1);
    return i;
  }

  private emit(tail: Buffer): void {
    if (!this.dropping && this.partsLength + tail.length > this.maxMessageSize) {
      this.keep(tail);
      this.emitTooLarge(this.length);
      return;
    }
    if (this.dropping) {
      this.emitTooLarge(this.length + tail.length);
      return;
    }
    let bytes: Buffer;
    if (this.parts.length === 0) {
      bytes = tail;
    } else {
      this.parts.push(tail);
      bytes = Buffer.concat(this.parts, this.partsLength + tail.length);
      this.parts = [];
      this.partsLength = 0;
    }
    this.state = 'between';
    if (this.multiline) {
      this.sawMultiline = true;
      // Positions were taken on the pretty form; read the compact form afresh.
      const compact = frameOne(compactJson(bytes));
      if (compact) this.events.message(compact);
      return;
    }
    const event = this.event ? bytes.toString('latin1', this.event.start + 1, this.event.end - 1) : undefined;
    this.events.message({ bytes, kind: this.kind, id: this.id, event });
  }

  private emitTooLarge(length: number): void {
    const { head, id, event } = this.dropping!;
    const hasId = this.id !== undefined;
    this.reset();
    this.events.message({ bytes: head, kind: this.kind, id: undefined, event, tooLarge: { length, limit: this.maxMessageSize, id: hasId ? smallInteger(id) : undefined } });
  }
}

/** The id digits of a message too long to keep, as qmp-mux gives ids: a small non-negative integer, or -1. */
function smallInteger(digits: string): number {
  return /^[0-9]{1,9}$/.test(digits) ? Number(digits) : -1;
}

/**
 * QEMU's pretty output turned into its compact output: whitespace outside
 * strings dropped, one space after each `,` and `:`.
 */
export function compactJson(bytes: Buffer): Buffer {
  const out = Buffer.allocUnsafe(bytes.length * 2);
  let n = 0;
  let inString = false;
  let escaped = false;
  for (const c of bytes) {
    if (inString) {
      out[n++] = c;
      if (escaped) escaped = false;
      else if (c === Byte.Backslash) escaped = true;
      else if (c === Byte.Quote) inString = false;
      continue;
    }
    if (isSpace(c)) continue;
    out[n++] = c;
    if (c === Byte.Quote) inString = true;
    else if (c === Byte.Comma || c === Byte.Colon) out[n++] = Byte.Space;
  }
  return out.subarray(0, n);
}

/** Frames bytes known to hold exactly one complete message. */
export function frameOne(bytes: Buffer): UpstreamMessage | undefined {
  let message: UpstreamMessage | undefined;
  new UpstreamFramer({ message: (m) => (message = m), garbage: () => undefined }, Infinity).feed(bytes);
  return message;
}

/**
 * Errors only QEMU's reader produces, for a message as a whole: never a
 * reply to a well-formed command within QEMU's limits, which is all qmp-mux
 * sends. (One exception is known: an `object-add` of an `authz-list-file`
 * whose file holds bad JSON reports the parser's error as its own.)
 */
const READER_ERRORS = ['JSON parse error, ', 'JSON token size limit exceeded', 'JSON token count limit exceeded', 'JSON nesting depth limit exceeded', 'QMP input '];
const READER_ERROR_HEADS = READER_ERRORS.map((desc) => Buffer.from(`{"error": {"class": "GenericError", "desc": ${JSON.stringify(desc).slice(0, -1)}`, 'latin1'));

/** Whether an id-less error from QEMU is one its reader produced (see READER_ERRORS). */
export function isReaderError(reply: UpstreamMessage): boolean {
  const bytes = reply.bytes;
  return reply.kind === 'error' && READER_ERROR_HEADS.some((head) => bytes.length > head.length && bytes.compare(head, 0, head.length, 0, head.length) === 0);
}
