import { LOG_BACKLOG } from '../log.ts';
import type { LimitOptions, Options } from './options.ts';

/**
 * What one message still being sent can hold, per byte of it: the value
 * parsed so far (JS objects: a Map is about 184 bytes, so `[{},{},...`
 * is the worst) and the text of the token being read (up to twice, as its
 * buffer doubles; a long token is not parsed objects as well). Measured
 * with a full collection before and after feeding eight streamers 256 KiB
 * of each shape of message, unfinished (heapUsed plus external, Node 20
 * x64): 61.7 for `[{},{},...`, 47 for `[[{}],...` and `[{"":{}},...`,
 * 42 for `[[1,2],...`, 25.5 for `[1,1,...`. A streamer's `heldBytes`
 * estimates each part at least as high (74.7 for `[{},{},...`).
 */
export const PARTIAL_MESSAGE_FACTOR = 64;
/** An idle negotiated client, measured at about 8 KiB (bench scenario 6); twice that, to be safe. */
const IDLE_CLIENT = 16 * 1024;
/** One read from a client's socket, held until the session has taken it. */
const READ_CHUNK = 64 * 1024;
/** What one turn of reading a client may queue beyond its limit: 16 messages, from at most 64 KiB read (twice that once encoded). */
const TURN_MESSAGES = 16;
const TURN_ENCODED = 2 * READ_CHUNK;
/** QEMU's message being framed, the copy made of it for its client, and that client's reply. */
const UPSTREAM_COPIES = 3;
/** A journal entry's bookkeeping besides its bytes. */
const JOURNAL_ENTRY = 256;

/** What the worst case holds, by part, in bytes. */
export interface MemoryBound {
  /** Clients' input: messages being sent, and commands waiting for their turn. */
  input: number;
  /** Replies and events written to clients and not yet read. */
  output: number;
  /** Connections themselves, idle. */
  connections: number;
  /** QEMU's largest message, in transit. */
  upstream: number;
  /** The event journal, the audit log's buffer, and log lines not yet taken by the log's reader. */
  records: number;
  /** Everything above. */
  total: number;
}

/**
 * The most memory qmp-mux holds, beyond its own baseline (about 50 MiB),
 * with every endpoint full of clients that each cost all they may: the
 * formula the README states. Everything in it is a limit of the
 * configuration; nothing grows past it.
 */
export function memoryBound(options: Options): MemoryBound {
  let partial = 0;
  let queued = 0;
  let overshoot = 0;
  let output = 0;
  let connections = 0;
  for (const e of options.endpoints) {
    const n = e.maxClients;
    const limits = costliest(e);
    partial += n * PARTIAL_MESSAGE_FACTOR * limits.maxMessageSize;
    queued += n * limits.maxInputBytes;
    overshoot += n * (turnOvershoot(limits) + READ_CHUNK);
    output += n * limits.maxOutputBuffer;
    connections += n * IDLE_CLIENT;
  }
  // Commands waiting behind a lock count in the total too, but the lock's holder is read regardless (it must be able to end the lock): its own bound comes on top.
  const holder = Math.max(0, ...options.endpoints.map((e) => costliest(e).maxInputBytes));
  const input = partial + Math.min(queued, options.totalInputBytes + holder) + overshoot;
  const upstream = UPSTREAM_COPIES * options.maxUpstreamMessage;
  const records = options.journal.maxBytes + options.journal.maxEvents * JOURNAL_ENTRY + (options.audit ? options.audit.maxBufferedBytes + options.audit.maxEntryBytes : 0) + LOG_BACKLOG;
  return { input, output, connections, upstream, records, total: input + output + connections + upstream + records };
}

/**
 * The most each limit lets one client of `endpoint` hold: its own, or an
 * identity's (every client may be of the identity allowed most, whose
 * `maxClients` is at most the endpoint's).
 */
function costliest(endpoint: Options['endpoints'][number]): LimitOptions {
  const all = [endpoint.limits, ...endpoint.identities.map((i) => i.limits)];
  const most = (key: keyof LimitOptions): number => Math.max(...all.map((l) => l[key]));
  return { ...endpoint.limits, maxMessageSize: most('maxMessageSize'), maxInputBytes: most('maxInputBytes'), maxCommandBytes: most('maxCommandBytes'), maxOutputBuffer: most('maxOutputBuffer') };
}

/** What one client may queue past its `maxInputBytes` in the turn of reading that reaches it. */
function turnOvershoot(limits: LimitOptions): number {
  return Math.min(TURN_MESSAGES * limits.maxCommandBytes, TURN_ENCODED);
}

/** `bytes` for a person: `512 KiB`, `1.5 GiB`. */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let n = bytes;
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit++;
  }
  return `${unit === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${units[unit]}`;
}

/** One line saying the bound, for `--check-config`. */
export function describeMemoryBound(options: Options): string {
  const b = memoryBound(options);
  const parts = [`client input ${formatBytes(b.input)}`, `client output ${formatBytes(b.output)}`, `connections ${formatBytes(b.connections)}`, `QEMU's messages ${formatBytes(b.upstream)}`, `journal, audit and log ${formatBytes(b.records)}`];
  return `at most ${formatBytes(b.total)} for clients and QEMU's messages, every endpoint full (${parts.join(', ')})`;
}
