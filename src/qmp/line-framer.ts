import { UpstreamFramingError } from '../errors.ts';
import { frameOne, type UpstreamFramerEvents, type UpstreamMessage } from './upstream-framer.ts';

const LF = 0x0a;
const CR = 0x0d;

/**
 * Framing for a QEMU monitor that writes compact JSON (`pretty=off`, the
 * default): then every message is exactly one line, since JSON strings
 * escape their line feeds. Lines are found with a native search, and the
 * shapes QEMU's own member order gives replies and events are read from a
 * line's head and tail, so a 200 KB reply costs a memchr, not a byte loop.
 * Any line of another shape goes through the full framer.
 */
export class LineFramer {
  private parts: Buffer[] = [];
  private partsLength = 0;

  constructor(
    private readonly events: UpstreamFramerEvents,
    private readonly maxMessageSize: number,
  ) {}

  /** Throws UpstreamFramingError when a line exceeds the size limit. */
  feed(chunk: Buffer): void {
    let start = 0;
    for (let lf = chunk.indexOf(LF); lf >= 0; lf = chunk.indexOf(LF, start)) {
      let line = chunk.subarray(start, lf);
      start = lf + 1;
      if (this.parts.length > 0) {
        this.parts.push(line);
        line = Buffer.concat(this.parts, this.partsLength + line.length);
        this.parts = [];
        this.partsLength = 0;
      }
      this.line(line);
    }
    if (start < chunk.length) {
      this.parts.push(chunk.subarray(start));
      this.partsLength += chunk.length - start;
      if (this.partsLength > this.maxMessageSize) {
        this.parts = [];
        this.partsLength = 0;
        throw new UpstreamFramingError(`QEMU sent a message longer than ${this.maxMessageSize} bytes`);
      }
    }
  }

  private line(raw: Buffer): void {
    const line = raw.length > 0 && raw[raw.length - 1] === CR ? raw.subarray(0, raw.length - 1) : raw;
    if (line.length === 0) return;
    const message = analyze(line);
    if (message) {
      this.events.message(message);
      return;
    }
    // Not a shape QEMU writes for replies and events: frame it the long way.
    const framed = frameOne(line);
    if (framed) this.events.message(framed);
    else this.events.garbage(line);
  }
}

const HEAD = 96;
/** `{"id": N, "error": ...}`: QEMU puts `id` first in an error reply. */
const ERROR_HEAD = /^\{"id": (\d+), "error": \{/;
const EVENT_HEAD = /^\{"timestamp": \{"seconds": -?\d+, "microseconds": -?\d+\}, "event": "([A-Za-z0-9_]+)"[,}]/;

const RETURN_HEAD = Buffer.from('{"return": ', 'latin1');
const ID_BEFORE_DIGITS = Buffer.from(', "id": ', 'latin1');

/** Whether `line` holds `part` at `at`; a byte loop, cheaper than a native call for a few bytes. */
function holds(line: Buffer, at: number, part: Buffer): boolean {
  if (at < 0 || at + part.length > line.length) return false;
  for (let i = 0; i < part.length; i++) if (line[at + i] !== part[i]) return false;
  return true;
}

/**
 * `{"return": ..., "id": N}`: QEMU puts `id` last in a success reply. Read
 * off the bytes without making strings, as every command's reply passes here.
 */
function numberedReturn(line: Buffer): UpstreamMessage | undefined {
  if (!holds(line, 0, RETURN_HEAD)) return undefined;
  const valueEnd = line.length - 1;
  let valueStart = valueEnd;
  while (valueStart > 0 && line[valueStart - 1]! >= 0x30 && line[valueStart - 1]! <= 0x39) valueStart--;
  const comma = valueStart - ID_BEFORE_DIGITS.length;
  if (valueStart === valueEnd || !holds(line, comma, ID_BEFORE_DIGITS)) return undefined;
  return { bytes: line, kind: 'return', id: { comma, keyStart: comma + 2, valueStart, valueEnd, nextKey: -1 }, event: undefined };
}

/**
 * Reads kind, id and event name off the head and tail of a compact line,
 * for the shapes with the numeric ids qmp-mux gives once negotiated;
 * undefined for other shapes.
 */
export function analyze(line: Buffer): UpstreamMessage | undefined {
  if (line[0] !== 0x7b || line[line.length - 1] !== 0x7d) return undefined;
  const numbered = numberedReturn(line);
  if (numbered) return numbered;
  const head = line.toString('latin1', 0, Math.min(HEAD, line.length));
  const error = ERROR_HEAD.exec(head);
  if (error) {
    const valueEnd = 7 + error[1]!.length;
    return { bytes: line, kind: 'error', id: { comma: -1, keyStart: 1, valueStart: 7, valueEnd, nextKey: valueEnd + 2 }, event: undefined };
  }
  const event = EVENT_HEAD.exec(head);
  if (event) return { bytes: line, kind: 'event', id: undefined, event: event[1] };
  return undefined;
}
