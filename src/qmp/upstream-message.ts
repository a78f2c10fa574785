/** What QEMU sent, framed: one message, what kind it is, and where its id sits. */

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
  readonly bytes: Buffer;
  /** The same bytes as they came over several reads, when they did (`bytes` joins them, when first asked for). */
  readonly pieces?: readonly Buffer[];
  kind: UpstreamKind;
  id: IdMember | undefined;
  /** For an event, its name. */
  event: string | undefined;
  /** Set when the message was longer than the framer keeps: its bytes are gone. */
  tooLarge?: TooLargeMessage;
}

/**
 * A message that came over several reads, kept as the pieces it came in: a
 * large reply is written on to its client as they are, never copied into
 * one buffer (a copy that costs a 200 KB reply a millisecond and more,
 * most of it the kernel's handing out fresh pages).
 */
export class SpannedMessage implements UpstreamMessage {
  private joined: Buffer | undefined;

  constructor(
    readonly pieces: readonly Buffer[],
    readonly kind: UpstreamKind,
    readonly id: IdMember | undefined,
    readonly event: string | undefined,
  ) {}

  get bytes(): Buffer {
    return (this.joined ??= Buffer.concat(this.pieces));
  }
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

/**
 * Errors only QEMU's reader produces, for a message as a whole: never a
 * reply to a well-formed command within QEMU's limits, which is all qmp-mux
 * sends. (One exception is known: an `object-add` of an `authz-list-file`
 * whose file holds bad JSON reports the parser's error as its own.)
 */
const READER_ERRORS = ['JSON parse error, ', 'JSON token size limit exceeded', 'JSON token count limit exceeded', 'JSON nesting depth limit exceeded', 'QMP input '];
const READER_ERROR_HEADS = READER_ERRORS.map((desc) => Buffer.from(`{"error": {"class": "GenericError", "desc": ${JSON.stringify(desc).slice(0, -1)}`, 'latin1'));
const LONGEST_HEAD = Math.max(...READER_ERROR_HEADS.map((head) => head.length));

/** Whether an id-less error from QEMU is one its reader produced (see READER_ERRORS). */
export function isReaderError(reply: UpstreamMessage): boolean {
  if (reply.kind !== 'error') return false;
  // A reply in pieces is joined for this only when its first piece is too short to hold a head.
  const piece = reply.pieces?.[0];
  const first = piece && piece.length > LONGEST_HEAD ? piece : reply.bytes;
  return READER_ERROR_HEADS.some((head) => first.length > head.length && first.compare(head, 0, head.length, 0, head.length) === 0);
}
