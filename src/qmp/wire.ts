import { QEMU_JSON_LIMITS } from '../json/streamer.ts';
import { JsonNumber, type JsonObject, type JsonValue } from '../json/value.ts';
import { quoteCompact, quoteString, writeCompact, writeCompactWithin, writeQemu } from '../json/writer.ts';
import { EXTENSION_PREFIX } from './extensions.ts';
import type { ErrorClass } from './error-classes.ts';
import type { IdMember, TooLargeMessage, UpstreamMessage } from './upstream-message.ts';

/**
 * Every byte qmp-mux and its client library write on a QMP socket, in one
 * place: to clients, replies, errors and events in QEMU's own bytes and
 * member order; to QEMU, commands in the shortest form it reads, never past
 * its limits; from the library, requests with its ids. Nothing else builds
 * wire text.
 */

/** Every message QEMU writes ends so, and so does every message qmp-mux writes to a client. */
export const EOL = '\r\n';
export const EOL_BYTES: Buffer = Buffer.from(EOL, 'latin1');

/** Bytes for a socket: text, a buffer, or pieces written together (a large reply as it came from QEMU, never joined). */
export type WireData = string | Buffer | readonly Buffer[];

/** How many bytes `data` is (text counted a byte a character, as it is written). */
export function wireLength(data: WireData): number {
  if (typeof data === 'string' || Buffer.isBuffer(data)) return data.length;
  let n = 0;
  for (const piece of data) n += piece.length;
  return n;
}

/** `data` as one buffer. */
export function wireBuffer(data: WireData): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'latin1');
  return Buffer.isBuffer(data) ? data : Buffer.concat(data);
}


// Replies to clients. `idText` is the client's id as QEMU echoes it (see
// `judgeRequest`), undefined when the client sent none.

/** A QMP error, as QEMU writes it: `{"error": ...}`, or `{"id": ..., "error": ...}` (QEMU's member order). */
export function errorReply(idText: string | undefined, errorClass: ErrorClass, desc: string): string {
  const error = `"error": {"class": "${errorClass}", "desc": ${quoteString(desc)}}`;
  return idText === undefined ? `{${error}}${EOL}` : `{"id": ${idText}, ${error}}${EOL}`;
}

/** A QMP success reply, `{"return": ..., "id": ...}` as QEMU writes it. */
export function returnReply(idText: string | undefined, value: JsonValue): string {
  return withId(`{"return": ${writeQemu(value)}}`, idText) + EOL;
}

/** What a client is told instead of QEMU's reply to `name` when that reply is longer than qmp-mux passes on. */
export function replyTooLarge(name: string, tooLarge: TooLargeMessage): string {
  return `QEMU's reply to ${name} is larger than qmp-mux passes on (${tooLarge.length} bytes; maxUpstreamMessage is ${tooLarge.limit})`;
}

/** The reply to a successful `qmp_capabilities`. */
export function negotiatedReply(idText: string | undefined): string {
  return withId('{"return": {}}', idText) + EOL;
}

function withId(returnText: string, idText: string | undefined): string {
  return idText === undefined ? returnText : `${returnText.slice(0, -1)}, "id": ${idText}}`;
}

const RETURN_ID_PREFIX = Buffer.from(', "id": ', 'latin1');
const ERROR_ID_PREFIX = Buffer.from('"id": ', 'latin1');
const ERROR_ID_SUFFIX = Buffer.from(', ', 'latin1');

/**
 * QEMU's reply to a command made into the reply its client gets, with the
 * line end. An in-band reply comes without an id (qmp-mux sends in-band
 * commands without one): the client's id goes where QEMU would have put it,
 * last in a return, first in an error. An out-of-band reply carries
 * qmp-mux's id: the client's replaces it, or it goes if the client sent none.
 */
export function replyForClient(reply: UpstreamMessage, idText: string | undefined): Buffer | readonly Buffer[] {
  if (reply.pieces && !reply.id) return inPieces(reply.pieces, reply.kind, idText);
  const bytes = reply.bytes;
  if (reply.id) return replaceId(bytes, reply.id, idText);
  if (idText === undefined) return Buffer.concat([bytes, EOL_BYTES]);
  const id = Buffer.from(idText, 'latin1');
  if (reply.kind === 'error') return Buffer.concat([bytes.subarray(0, 1), ERROR_ID_PREFIX, id, ERROR_ID_SUFFIX, bytes.subarray(1), EOL_BYTES]);
  return Buffer.concat([bytes.subarray(0, bytes.length - 1), RETURN_ID_PREFIX, id, bytes.subarray(bytes.length - 1), EOL_BYTES]);
}

/** The same as for one buffer, for a reply that came in pieces: the client's id spliced in between them, nothing copied. */
function inPieces(pieces: readonly Buffer[], kind: UpstreamMessage['kind'], idText: string | undefined): readonly Buffer[] {
  if (idText === undefined) return [...pieces, EOL_BYTES];
  const id = Buffer.from(idText, 'latin1');
  if (kind === 'error') {
    const [first, ...rest] = pieces as [Buffer, ...Buffer[]];
    return [first.subarray(0, 1), ERROR_ID_PREFIX, id, ERROR_ID_SUFFIX, first.subarray(1), ...rest, EOL_BYTES];
  }
  const last = pieces[pieces.length - 1]!;
  return [...pieces.slice(0, -1), last.subarray(0, last.length - 1), RETURN_ID_PREFIX, id, last.subarray(last.length - 1), EOL_BYTES];
}

function replaceId(bytes: Buffer, id: IdMember, idText: string | undefined): Buffer {
  if (idText !== undefined) return splice(bytes, id.valueStart, id.valueEnd, idText);
  if (id.comma >= 0) return splice(bytes, id.comma, id.valueEnd, '');
  return splice(bytes, id.keyStart, id.nextKey >= 0 ? id.nextKey : id.valueEnd, '');
}

function splice(bytes: Buffer, cutFrom: number, cutTo: number, insert: string): Buffer {
  return Buffer.concat([bytes.subarray(0, cutFrom), Buffer.from(insert, 'latin1'), bytes.subarray(cutTo), EOL_BYTES]);
}

/**
 * The greeting clients get: QEMU's own bytes, with the capabilities cut
 * down to `supported` (spliced in, since QEMU's member order survives only
 * in its own bytes). Undefined when the greeting cannot be read so.
 */
export function greetingForClients(greeting: Buffer, offered: readonly string[], supported: readonly string[]): Buffer | undefined {
  let text = greeting.toString('latin1');
  if (supported.length !== offered.length) {
    const at = text.lastIndexOf('"capabilities": [');
    const end = text.indexOf(']', at);
    if (at < 0 || end < 0) return undefined;
    text = `${text.slice(0, at)}"capabilities": ${writeQemu([...supported])}${text.slice(end + 1)}`;
  }
  return Buffer.from(text + EOL, 'latin1');
}

// Commands to QEMU.

/**
 * The `qmp_capabilities` that opens every upstream connection. Its id is
 * unique to the connection, so that a reply QEMU still owes an earlier
 * connection (it answers whoever is connected) can never be taken for it.
 */
export function upstreamNegotiation(enable: readonly string[], id: string): string {
  const args = enable.length > 0 ? `,"arguments":{"enable":[${enable.map(quoteCompact).join(',')}]}` : '';
  return `{"execute":"qmp_capabilities"${args},"id":${quoteCompact(id)}}`;
}

/** A command too large for QEMU once encoded: `desc` says which limit and by how much. */
export interface TooLarge {
  readonly tooLarge: string;
}

/**
 * An out-of-band command's id is added when it is sent: room is kept for
 * `,"id":` and nine digits, the longest id qmp-mux gives.
 */
const ID_TOKENS = 4;
const ID_BYTES = 6 + 9;

/**
 * Encodes commands as qmp-mux sends them to QEMU: its own encoding of what
 * it validated, with empty `arguments` left out (QEMU treats them the
 * same). In-band commands go without an id; QEMU answers them in order.
 *
 * QEMU's reader has limits on one message (bytes of token text, tokens,
 * nesting; see QEMU_JSON_LIMITS). Past one, QEMU reports an error without
 * an id and starts reading afresh inside the message, where the rest of a
 * string could pass for commands. So what qmp-mux writes is measured, and a
 * command that would not fit is never sent.
 *
 * In-band commands without arguments (most of what clients send:
 * `query-status`, `query-block`...) are encoded once per encoder; the bytes
 * are never changed once made, so one Buffer serves every use. The cache is
 * bounded, since names come from clients, and each mux has its own.
 */
export class CommandEncoder {
  private readonly plain = new Map<string, Buffer>();

  encode(name: string, args: JsonObject | undefined, oob: boolean, cap?: CommandCap): Buffer | TooLarge {
    const plain = args === undefined || args.size === 0;
    if (plain && !oob) {
      const known = this.plain.get(name);
      if (known) return cap && known.length > cap.maxBytes ? overCap(name, known.length, cap) : known;
    }
    const encoded = encodeCommand(name, args, oob, cap);
    if (plain && !oob && Buffer.isBuffer(encoded) && this.plain.size < PLAIN_COMMANDS_KEPT) this.plain.set(name, encoded);
    return encoded;
  }
}

const PLAIN_COMMANDS_KEPT = 512;

/** A command as qmp-mux sends it to QEMU (see CommandEncoder), encoded afresh. */
export function encodeCommand(name: string, args: JsonObject | undefined, oob: boolean, cap?: CommandCap): Buffer | TooLarge {
  const verb = oob ? 'exec-oob' : 'execute';
  const limits = QEMU_JSON_LIMITS;
  // `{`, the verb and its colon, the name, `}`.
  let tokens = 5;
  let depth = 1;
  let text = `{"${verb}":${quoteCompact(name)}`;
  /** Bytes of arguments too large to send, measured instead of written. */
  let measured = 0;
  if (args !== undefined && args.size > 0) {
    text += ',"arguments":';
    // The most the arguments may take, past which one of the checks below refuses the command.
    const room = Math.min(limits.maxMessageSize - 1, cap ? cap.maxBytes : Infinity) - (oob ? ID_BYTES : 0) - Buffer.byteLength(text, 'utf8') - 1;
    const written = writeCompactWithin(args, room);
    tokens += 3 + written.tokens;
    depth += written.depth;
    if ('text' in written) text += written.text;
    else measured = written.bytes;
  }
  text += '}';
  const bytes = Buffer.from(text, 'utf8');
  const size = bytes.length + measured + (oob ? ID_BYTES : 0);
  if (oob) tokens += ID_TOKENS;
  // QEMU refuses a message once its token text plus one reaches the limit.
  if (size + 1 > limits.maxMessageSize) return tooLarge(name, `${size} bytes`, `${limits.maxMessageSize - 1}`);
  if (tokens > limits.maxTokens) return tooLarge(name, `${tokens} tokens`, `${limits.maxTokens}`);
  if (depth > limits.maxNesting) return tooLarge(name, `nesting ${depth} deep`, `${limits.maxNesting}`);
  if (cap && size > cap.maxBytes) return overCap(name, size, cap);
  return bytes;
}

function tooLarge(name: string, measured: string, most: string): TooLarge {
  return { tooLarge: `The command ${name} does not fit in one QEMU message once re-encoded by qmp-mux (${measured}; QEMU reads at most ${most})` };
}

/** A smaller bound than QEMU's on the bytes of one command: an endpoint's. */
export interface CommandCap {
  readonly maxBytes: number;
  /** The endpoint whose limit it is, for the error text. */
  readonly endpoint: string;
  /** What the limit is called, for the error text: `its maxCommandBytes`, say. */
  readonly setting: string;
}

function overCap(name: string, size: number, cap: CommandCap): TooLarge {
  return { tooLarge: `The command ${name} is larger than endpoint '${cap.endpoint}' accepts (${size} bytes as sent to QEMU; ${cap.setting} is ${cap.maxBytes})` };
}

/** An encoded out-of-band command with qmp-mux's id added. */
export function withUpstreamId(command: Buffer, id: number): Buffer {
  return Buffer.concat([command.subarray(0, command.length - 1), Buffer.from(`,"id":${id}}`, 'latin1')]);
}

// Events, as clients get them.

/** The member added as the last one of a live event on endpoints that ask for it. */
export const LIVE_SEQ_KEY = `${EXTENSION_PREFIX}seq`;

/**
 * QEMU's event object (compact, without line terminator, as the upstream
 * framer hands it over; never empty, it has at least `event`) with
 * `"__org.qmp-mux_seq": SEQ` added as its last member. QEMU's bytes are
 * spliced in as they came, never re-serialized.
 */
export function withLiveSeq(event: Buffer, seq: number): Buffer {
  return Buffer.concat([event.subarray(0, event.length - 1), Buffer.from(`, "${LIVE_SEQ_KEY}": ${seq}}`, 'latin1')]);
}

/** Events (QEMU's objects, without line terminators) as one write: each followed by its line end. */
export function eventLines(events: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const bytes of events) parts.push(bytes, EOL_BYTES);
  return Buffer.concat(parts);
}

/** What `__org.qmp-mux_query-events` answers with. */
export interface EventsReplyValue {
  dropped: boolean;
  last: number;
  events: readonly { readonly bytes: Buffer; readonly seq: number }[];
}

/**
 * The complete reply to `__org.qmp-mux_query-events`, members in the order
 * QEMU writes them (its hash order, as for every reply qmp-mux makes):
 * `{"return": {"dropped": B, "last": N, "events": [{"event": EVENT, "seq": N}, ...]}, "id": ID}`
 * where EVENT is QEMU's object as it sent it.
 */
export function queryEventsReply(idText: string | undefined, result: EventsReplyValue): Buffer {
  const parts: Buffer[] = [Buffer.from(`{"return": {"dropped": ${result.dropped}, "last": ${result.last}, "events": [`, 'latin1')];
  result.events.forEach((e, i) => {
    parts.push(Buffer.from(i === 0 ? '{"event": ' : ', {"event": ', 'latin1'), e.bytes, Buffer.from(`, "seq": ${e.seq}}`, 'latin1'));
  });
  parts.push(Buffer.from(idText === undefined ? `]}}${EOL}` : `]}, "id": ${idText}}${EOL}`, 'latin1'));
  return Buffer.concat(parts);
}

// The client library's requests.

/** A command as the client library sends it: compact, with the library's id last. */
export function clientRequest(name: string, args: JsonObject | undefined, id: number): string {
  const message: JsonObject = new Map<string, JsonValue>([['execute', name]]);
  if (args !== undefined && args.size > 0) message.set('arguments', args);
  message.set('id', new JsonNumber(String(id), true));
  return writeCompact(message).text;
}

/** QEMU's reply, rewritten by qmp-mux (`query-commands` cut down to a policy), as QEMU would write it: no line end yet, as QEMU's own. */
export function rewrittenReply(reply: JsonObject): Buffer {
  return Buffer.from(writeQemu(reply), 'latin1');
}
