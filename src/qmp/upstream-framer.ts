import { Byte, isSpace } from './bytes.ts';
import { compactJson } from './compact.ts';
import { scanNested, type NestedScan } from './nested-scan.ts';
import { SpannedMessage, type IdMember, type UpstreamKind, type UpstreamMessage } from './upstream-message.ts';

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

/** A message from this many bytes on that came over several reads is passed on as the pieces it came in (smaller ones are joined: a cheap copy). */
const PIECES_FROM = 64 * 1024;

/** QEMU's line end, which a read may hold beyond a message's last piece. */
const EOL_LENGTH = 2;

/**
 * A piece that holds nothing else alive: the read it came from, when it
 * is that read (but for QEMU's line end), else a copy of its own bytes. A
 * piece kept in a client's output must cost what the client is counted
 * for, not the neighbouring messages of its read.
 */
function alone(piece: Buffer): Buffer {
  if (piece.buffer.byteLength - piece.length <= EOL_LENGTH) return piece;
  // Not Buffer.from: a small copy would come from, and keep alive, a pool shared with others.
  const copy = Buffer.allocUnsafeSlow(piece.length);
  piece.copy(copy);
  return copy;
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

/** The member names qmp-mux looks for; any other is `other`. */
type Key = 'QMP' | 'event' | 'return' | 'error' | 'id' | 'other';
const KIND_BY_KEY: Readonly<Partial<Record<Key, UpstreamKind>>> = { QMP: 'greeting', event: 'event', return: 'return', error: 'error' };
/**
 * A member name is read as a number, byte by byte (base 256), rather than
 * as a string: as far as the longest name looked for, six bytes, which
 * stays exact in a double.
 */
const KEY_BYTES = 6;
const KEYS = new Map<number, Key>((['QMP', 'event', 'return', 'error', 'id'] as const).map((k) => [[...k].reduce((n, c) => n * 256 + c.charCodeAt(0), 0), k]));

export class UpstreamFramer {
  private state: State = 'between';
  /** Bytes of the current message from earlier chunks. */
  private parts: Buffer[] = [];
  private partsLength = 0;
  /** In a string at depth 1: the last byte was a backslash. */
  private escaped = false;
  /** In `nested`: where the scan of the nested value is. */
  private nested: NestedScan = { depth: 0, inString: false, escaped: false, multiline: false };
  /** The member being read: its name's start, the name so far (as a number, and its length), and the name once read. */
  private keyStart = -1;
  private keyCode = 0;
  private keyLength = 0;
  private key: Key = 'other';
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
    // Where the current message starts in this chunk (-1: before it), and where the chunk starts in the message.
    let start = this.state === 'between' ? -1 : 0;
    let offset = this.partsLength;
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
            offset = -i;
            this.begin();
          } else if (!isSpace(c) && garbageStart < 0) {
            garbageStart = i;
          }
          break;
        case 'nested':
          i = this.skipNested(chunk, i, offset);
          break;
        case 'keyText':
        case 'text':
          if (this.escaped) this.escaped = false;
          else if (c === Byte.Backslash) this.escaped = true;
          else if (c === Byte.Quote) this.endString(offset + i);
          else if (this.state === 'keyText' && this.keyLength++ < KEY_BYTES) this.keyCode = this.keyCode * 256 + c;
          break;
        case 'scalar':
          if (c !== Byte.Comma && c !== Byte.RBrace && !isSpace(c)) {
            if (this.inIdNumber && this.dropping && this.dropping.id.length <= 9) this.dropping.id += String.fromCharCode(c);
            break;
          }
          // The byte that ends a scalar is the next member's (or the message's) too.
          this.endValue(offset + i);
          if (this.depthOne(c, offset + i)) {
            this.emit(chunk.subarray(start, i + 1));
            start = -1;
          }
          break;
        default:
          if (this.depthOne(c, offset + i)) {
            this.emit(chunk.subarray(start, i + 1));
            start = -1;
          }
      }
    }
    if (garbageStart >= 0) this.events.garbage(chunk.subarray(garbageStart));
    if (start >= 0) this.keep(chunk.subarray(start));
  }

  /** A byte at depth 1 outside strings and scalars, at `pos` in the message; true when it closes the message. */
  private depthOne(c: number, pos: number): boolean {
    if (c === Byte.LF) this.multiline = true;
    return !isSpace(c) && this.structure(c, pos);
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
          this.keyCode = 0;
          this.keyLength = 0;
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
          this.nested = { depth: 2, inString: false, escaped: false, multiline: false };
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
      this.key = (this.keyLength <= KEY_BYTES && KEYS.get(this.keyCode)) || 'other';
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

  /** Skips a nested value in `chunk` from `from` (`offset`: where `chunk` starts in the message); returns the index of the last byte consumed. */
  private skipNested(chunk: Buffer, from: number, offset: number): number {
    const { stop: i, scan } = scanNested(chunk, from, this.nested);
    this.nested = scan;
    if (scan.multiline) this.multiline = true;
    if (i === chunk.length) return i - 1;
    this.endValue(offset + i + 1);
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
      const pieces = this.parts;
      const length = this.partsLength + tail.length;
      pieces.push(tail);
      this.parts = [];
      this.partsLength = 0;
      // A large reply, as it came: written on as these pieces. (Events are read whole: their name, the journal.)
      if (length >= PIECES_FROM && !this.multiline && this.kind !== 'event') {
        this.state = 'between';
        this.events.message(new SpannedMessage(pieces.map(alone), this.kind, this.id, undefined));
        return;
      }
      bytes = Buffer.concat(pieces, length);
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

/** Frames bytes known to hold exactly one complete message. */
export function frameOne(bytes: Buffer): UpstreamMessage | undefined {
  let message: UpstreamMessage | undefined;
  new UpstreamFramer({ message: (m) => (message = m), garbage: () => undefined }, Infinity).feed(bytes);
  return message;
}
