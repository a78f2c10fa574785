import { UpstreamFramingError } from '../errors.ts';

/**
 * Frames what QEMU writes. Unlike client input this is trusted to be QEMU's
 * own output, and it is not always JSON (`"id": inf` for an id of 1e400),
 * so the framer does not parse values: it finds where each top-level object
 * ends, which of the members qmp-mux cares about it has, and where the `id`
 * member sits, so a reply can be rerouted by splicing bytes instead of being
 * re-serialized. Pretty-printed output (`-mon pretty=on`) is compacted to
 * the one-line form every client of a default monitor sees.
 */

export type UpstreamKind = 'greeting' | 'event' | 'return' | 'error' | 'unknown';

/** Where the top-level `id` member sits in a message, as byte offsets. */
export interface IdMember {
  /** The `,` before the member, or -1 when it is the first member. */
  comma: number;
  keyStart: number;
  valueStart: number;
  valueEnd: number;
  /** Start of the next member's key, or -1 when it is the last member. */
  nextKey: number;
}

export interface UpstreamMessage {
  /** One compact JSON object, without line terminator. */
  bytes: Buffer;
  kind: UpstreamKind;
  id: IdMember | undefined;
  /** For an event, its name. */
  event: string | undefined;
}

export interface UpstreamFramerEvents {
  message(message: UpstreamMessage): void;
  /** Bytes outside any object (QEMU never writes them). */
  garbage(bytes: Buffer): void;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LF = 0x0a;

const KIND_BY_KEY: Record<string, UpstreamKind> = {
  QMP: 'greeting',
  event: 'event',
  return: 'return',
  error: 'error',
};

export class UpstreamFramer {
  private parts: Buffer[] = [];
  private partsLength = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** At depth 1: whether the next string is a member name. */
  private expectKey = false;
  private keyStart = -1;
  private key = '';
  private lastComma = -1;
  private pendingIdValue = false;
  private pendingEventValue = false;
  private eventStart = -1;
  private eventEnd = -1;
  private kind: UpstreamKind = 'unknown';
  private id: IdMember | undefined;
  private multiline = false;

  constructor(
    private readonly events: UpstreamFramerEvents,
    /** Longest message accepted, in bytes; longer input is a protocol error. */
    private readonly maxMessageSize: number,
  ) {}

  /** Whether a message came over several lines (a `pretty=on` monitor). */
  sawMultiline = false;

  /** True between messages. */
  get idle(): boolean {
    return this.depth === 0;
  }

  /** Throws UpstreamFramingError when a message exceeds the size limit. */
  feed(chunk: Buffer): void {
    let start = this.depth > 0 ? 0 : -1;
    let garbageStart = -1;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (this.depth === 0) {
        if (c === 0x7b /* { */) {
          if (garbageStart >= 0) this.events.garbage(chunk.subarray(garbageStart, i));
          garbageStart = -1;
          start = i;
          this.beginMessage();
        } else if (c !== 0x20 && c !== 0x0d && c !== LF && c !== 0x09 && garbageStart < 0) {
          garbageStart = i;
        }
        continue;
      }
      if (this.depth >= 2 && !this.inString) {
        i = this.skipNested(chunk, i);
        continue;
      }
      const pos = this.partsLength + (i - start);
      if (this.inString) {
        if (this.escaped) {
          this.escaped = false;
        } else if (c === BACKSLASH) {
          this.escaped = true;
        } else if (c === QUOTE) {
          this.inString = false;
          if (this.keyStart >= 0) this.endKey();
        } else if (this.keyStart >= 0 && this.key.length < 8) {
          this.key += String.fromCharCode(c);
        }
        continue;
      }
      switch (c) {
        case QUOTE:
          this.inString = true;
          if (this.depth === 1 && this.expectKey) {
            this.keyStart = pos;
            this.key = '';
          } else {
            this.valueStart(pos);
          }
          break;
        case 0x7b: // {
        case 0x5b: // [
          this.valueStart(pos);
          this.depth++;
          break;
        case 0x7d: // }
        case 0x5d: // ]
          this.depth--;
          if (this.depth === 0) {
            this.endValueAt(pos);
            const end = i + 1;
            this.emit(chunk.subarray(start, end));
            start = -1;
          }
          break;
        case 0x2c: // ,
          if (this.depth === 1) {
            this.endValueAt(pos);
            this.lastComma = pos;
            this.expectKey = true;
          }
          break;
        case 0x3a: // :
          if (this.depth === 1 && this.key === 'id') this.pendingIdValue = true;
          else if (this.depth === 1 && this.key === 'event') this.pendingEventValue = true;
          break;
        case LF:
          this.multiline = true;
          break;
        case 0x20: case 0x0d: case 0x09:
          break;
        default:
          this.valueStart(pos);
      }
    }
    if (garbageStart >= 0) this.events.garbage(chunk.subarray(garbageStart));
    if (start >= 0) {
      this.parts.push(chunk.subarray(start));
      this.partsLength += chunk.length - start;
      if (this.partsLength > this.maxMessageSize) {
        this.reset();
        throw new UpstreamFramingError(`QEMU sent a message longer than ${this.maxMessageSize} bytes`);
      }
    }
  }

  /**
   * Inside a nested value only brackets, strings and line feeds matter: a
   * tight loop over them (a 200 KB query-qmp-schema reply is mostly this).
   * Returns the index of the last byte consumed.
   */
  private skipNested(chunk: Buffer, from: number): number {
    let depth = this.depth;
    const len = chunk.length;
    let i = from;
    for (; i < len; i++) {
      const c = chunk[i]!;
      if (c === QUOTE) {
        let j = i + 1;
        while (j < len) {
          const s = chunk[j]!;
          if (s === QUOTE) break;
          j += s === BACKSLASH ? 2 : 1;
        }
        if (j >= len) {
          // The string goes on in the next chunk, perhaps right after a backslash.
          this.inString = true;
          this.escaped = j > len;
          this.depth = depth;
          return len - 1;
        }
        i = j;
      } else if (c === 0x7b || c === 0x5b) {
        depth++;
      } else if (c === 0x7d || c === 0x5d) {
        if (--depth === 1) break;
      } else if (c === LF) {
        this.multiline = true;
      }
    }
    this.depth = depth;
    return Math.min(i, len - 1);
  }

  /** Forgets any partial message (the connection it came from is gone). */
  reset(): void {
    this.parts = [];
    this.partsLength = 0;
    this.depth = 0;
    this.inString = false;
    this.escaped = false;
  }

  private beginMessage(): void {
    this.depth = 1;
    this.expectKey = true;
    this.keyStart = -1;
    this.key = '';
    this.lastComma = -1;
    this.pendingIdValue = false;
    this.pendingEventValue = false;
    this.eventStart = -1;
    this.eventEnd = -1;
    this.kind = 'unknown';
    this.id = undefined;
    this.multiline = false;
  }

  private endKey(): void {
    this.expectKey = false;
    const kind = KIND_BY_KEY[this.key];
    if (kind !== undefined && this.kind === 'unknown') this.kind = kind;
    if (this.key === 'id') {
      this.id = { comma: this.lastComma, keyStart: this.keyStart, valueStart: -1, valueEnd: -1, nextKey: -1 };
    } else if (this.id && this.id.nextKey < 0 && this.id.valueEnd >= 0) {
      this.id.nextKey = this.keyStart;
    }
    this.keyStart = -1;
  }

  /** A value (or a scalar's first byte) begins at `pos`. */
  private valueStart(pos: number): void {
    if (this.depth !== 1) return;
    if (this.pendingIdValue) {
      this.id!.valueStart = pos;
      this.pendingIdValue = false;
    } else if (this.pendingEventValue) {
      this.eventStart = pos;
      this.pendingEventValue = false;
    }
  }

  /**
   * A depth-1 value ends at `pos`, a `,` or the closing `}`; in compact
   * output nothing stands between a value and its separator.
   */
  private endValueAt(pos: number): void {
    const id = this.id;
    if (id && id.valueStart >= 0 && id.valueEnd < 0) id.valueEnd = pos;
    if (this.eventStart >= 0 && this.eventEnd < 0) this.eventEnd = pos;
  }

  private emit(tail: Buffer): void {
    let bytes: Buffer;
    if (this.parts.length === 0) {
      bytes = tail;
    } else {
      this.parts.push(tail);
      bytes = Buffer.concat(this.parts, this.partsLength + tail.length);
      this.parts = [];
      this.partsLength = 0;
    }
    if (this.multiline) {
      this.sawMultiline = true;
      // Positions were taken on the pretty form; analyse the compact form afresh.
      const compact = frameOne(compactJson(bytes));
      if (compact) this.events.message(compact);
      return;
    }
    const event = this.kind === 'event' && this.eventStart >= 0 ? bytes.toString('latin1', this.eventStart + 1, this.eventEnd - 1) : undefined;
    this.events.message({ bytes, kind: this.kind, id: this.id, event });
  }
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
      else if (c === BACKSLASH) escaped = true;
      else if (c === QUOTE) inString = false;
      continue;
    }
    if (c === 0x20 || c === 0x0d || c === LF || c === 0x09) continue;
    out[n++] = c;
    if (c === QUOTE) inString = true;
    else if (c === 0x2c || c === 0x3a) out[n++] = 0x20;
  }
  return out.subarray(0, n);
}

/** Frames bytes known to hold exactly one complete message. */
export function frameOne(bytes: Buffer): UpstreamMessage | undefined {
  let message: UpstreamMessage | undefined;
  new UpstreamFramer({ message: (m) => (message = m), garbage: () => undefined }, Infinity).feed(bytes);
  return message;
}
