import type { JsonObject } from '../json/value.ts';
import { writeCompact } from '../json/writer.ts';
import { Policy } from '../policy/policy.ts';
import { POLICY_PRESETS } from '../policy/presets.ts';

/**
 * The audit log's lines: one compact JSON object each, built on the data
 * path (so cheaply, with no parsing) and never longer than the cap: what a
 * client controls (arguments, then id, then command name) is cut to a
 * prefix under `NAME-truncated: {"bytes": FULL-SIZE, "prefix": "..."}`.
 */

const readOnly = new Policy(POLICY_PRESETS['read-only']);

/** A command that can change state: anything the `read-only` policy preset refuses whatever its arguments. */
export function isStateChanging(name: string): boolean {
  return !readOnly.mayAllow(name);
}

/** A command a client sent that qmp-mux refused by policy. */
export interface RefusalEntry {
  endpoint: string;
  /** The client's number, as in `query-clients`. */
  client: number;
  peer: string;
  /** The identity its certificate matched, as in `query-clients`; undefined without one. */
  identity?: string | undefined;
  /** Its certificate's subject, on a TLS endpoint with client certificates. */
  subject?: string | undefined;
  command: string;
  /** The client's id as QEMU echoes it (the session's `idText`); undefined when it sent none. */
  idText: string | undefined;
  arguments: JsonObject | undefined;
}

/** A command that was answered. */
export interface CommandEntry extends RefusalEntry {
  /** `return`, or the error class of the reply (QEMU's, or qmp-mux's for its own commands). */
  outcome: string;
  /** From sending the command to QEMU until its reply, seconds; undefined when QEMU was not asked. */
  qemuSeconds: number | undefined;
}

const ERROR_CLASS = Buffer.from('"error": {"class": "', 'latin1');

/**
 * The `outcome` of an error reply as QEMU writes it (`{"id": ..., "error":
 * {"class": C, "desc": ...}}`), read off its bytes: the last such opening
 * is the reply's own (an id, which comes first, may hold the same text;
 * inside strings the quotes are escaped).
 */
export function errorClass(reply: Buffer): string {
  const at = reply.lastIndexOf(ERROR_CLASS);
  if (at < 0) return 'error';
  const start = at + ERROR_CLASS.length;
  return reply.toString('latin1', start, reply.indexOf(0x22, start));
}

export interface EventEntry {
  name: string;
  /** The journal's sequence number, when there is a journal. */
  seq: number | undefined;
  /** QEMU's event object as it sent it. */
  bytes: Buffer;
}

/** A member of a line: its key and its value as JSON text; `cut` marks a value that may be shortened. */
interface Member {
  key: string;
  value: string;
  /** The text kept as a prefix when the member is cut (the value itself, or the string a JSON string holds). */
  cut?: string;
}

/** `{"time":...,"type":"command","endpoint":...,"client":N,"peer":...,"identity":...,"subject":...,"command":...,"id":ID,"arguments":{...},"outcome":...,"qemu-seconds":S}` */
export function commandLine(time: Date, entry: CommandEntry, withArguments: boolean, maxBytes: number): string {
  const members: Member[] = [
    { key: 'time', value: `"${time.toISOString()}"` },
    { key: 'type', value: '"command"' },
    { key: 'endpoint', value: JSON.stringify(entry.endpoint) },
    { key: 'client', value: String(entry.client) },
    { key: 'peer', value: JSON.stringify(entry.peer) },
  ];
  if (entry.identity !== undefined) members.push({ key: 'identity', value: JSON.stringify(entry.identity) });
  if (entry.subject !== undefined) members.push({ key: 'subject', value: JSON.stringify(entry.subject), cut: entry.subject });
  members.push({ key: 'command', value: JSON.stringify(entry.command), cut: entry.command });
  if (entry.idText !== undefined) members.push(jsonOrText('id', entry.idText));
  if (withArguments && entry.arguments !== undefined) {
    const text = writeCompact(entry.arguments).text;
    members.push({ key: 'arguments', value: text, cut: text });
  }
  members.push({ key: 'outcome', value: JSON.stringify(entry.outcome) });
  if (entry.qemuSeconds !== undefined) members.push({ key: 'qemu-seconds', value: String(Number(entry.qemuSeconds.toFixed(6))) });
  return fit(members, ['arguments', 'id', 'id-text', 'subject', 'command'], maxBytes);
}

/** `{"time":...,"type":"event","event":NAME,"seq":N,"message":{QEMU's event}}` */
export function eventLine(time: Date, entry: EventEntry, maxBytes: number): string {
  const members: Member[] = [
    { key: 'time', value: `"${time.toISOString()}"` },
    { key: 'type', value: '"event"' },
    { key: 'event', value: JSON.stringify(entry.name) },
  ];
  if (entry.seq !== undefined) members.push({ key: 'seq', value: String(entry.seq) });
  members.push(jsonOrText('message', entry.bytes.toString('utf8')));
  return fit(members, ['message', 'message-text'], maxBytes);
}

/** A lock granted to a client, or ended. */
export interface LockEntry {
  action: 'granted' | 'ended';
  endpoint: string;
  client: number;
  peer: string;
  /** The holder's identity and certificate subject, as in command records. */
  identity?: string | undefined;
  subject?: string | undefined;
  mode: string;
  reason: string | undefined;
  /** Why it ended: `unlock`, `lease`, `disconnect`, `qemu-gone`, `stopping`. */
  why?: string;
  /** Granted: its lease, ms. */
  leaseMs?: number;
  /** Granted: how long its holder waited for it; ended: how long it was held (seconds). */
  seconds: number;
}

/** `{"time":...,"type":"lock","action":"granted"|"ended","why":W,"endpoint":...,"client":N,"peer":...,"identity":...,"subject":...,"mode":M,"reason":R,"lease-ms":L,"waited-seconds"|"held-seconds":S}` */
export function lockLine(time: Date, entry: LockEntry, maxBytes: number): string {
  const members: Member[] = [
    { key: 'time', value: `"${time.toISOString()}"` },
    { key: 'type', value: '"lock"' },
    { key: 'action', value: `"${entry.action}"` },
  ];
  if (entry.why !== undefined) members.push({ key: 'why', value: JSON.stringify(entry.why) });
  members.push(
    { key: 'endpoint', value: JSON.stringify(entry.endpoint) },
    { key: 'client', value: String(entry.client) },
    { key: 'peer', value: JSON.stringify(entry.peer) },
  );
  if (entry.identity !== undefined) members.push({ key: 'identity', value: JSON.stringify(entry.identity) });
  if (entry.subject !== undefined) members.push({ key: 'subject', value: JSON.stringify(entry.subject), cut: entry.subject });
  members.push({ key: 'mode', value: JSON.stringify(entry.mode) });
  if (entry.reason !== undefined) members.push({ key: 'reason', value: JSON.stringify(entry.reason), cut: entry.reason });
  if (entry.leaseMs !== undefined) members.push({ key: 'lease-ms', value: String(entry.leaseMs) });
  members.push({ key: entry.action === 'granted' ? 'waited-seconds' : 'held-seconds', value: String(Number(entry.seconds.toFixed(6))) });
  return fit(members, ['reason', 'subject'], maxBytes);
}

/** `{"time":...,"type":"dropped","entries":N}`: N entries are missing here. */
export function droppedLine(time: Date, entries: number): string {
  return `{"time":"${time.toISOString()}","type":"dropped","entries":${entries}}\n`;
}

/**
 * QEMU writes numbers beyond a double's range as `inf`/`-inf`/`nan`, which
 * are not JSON; text holding one goes in as a string under `KEY-text`.
 */
function jsonOrText(key: string, text: string): Member {
  if (/inf|nan/.test(text)) {
    try {
      JSON.parse(text);
    } catch {
      const value = JSON.stringify(text);
      return { key: `${key}-text`, value, cut: text };
    }
  }
  return { key, value: text, cut: text };
}

function render(members: readonly Member[]): string {
  return `{${members.map((m) => `"${m.key}":${m.value}`).join(',')}}`;
}

/** The line, with the members named in `cutOrder` cut in that order until it fits in `maxBytes` (newline excluded). */
function fit(members: Member[], cutOrder: readonly string[], maxBytes: number): string {
  let line = render(members);
  let size = Buffer.byteLength(line);
  for (const key of cutOrder) {
    if (size <= maxBytes) break;
    const i = members.findIndex((m) => m.key === key);
    const m = members[i];
    if (m?.cut === undefined) continue;
    const bytes = Buffer.byteLength(m.cut);
    const shell = `"${key}-truncated":{"bytes":${bytes},"prefix":}`;
    const rest = size - Buffer.byteLength(`"${m.key}":${m.value}`);
    const prefix = fitString(m.cut, maxBytes - rest - Buffer.byteLength(shell));
    members[i] = { key: `${key}-truncated`, value: `{"bytes":${bytes},"prefix":${prefix}}` };
    line = render(members);
    size = Buffer.byteLength(line);
  }
  return line + '\n';
}

/** The JSON string of a prefix of `text` that takes at most `budget` bytes (`""` at least), as long as a few tries find. */
function fitString(text: string, budget: number): string {
  let n = Math.min(text.length, Math.max(0, budget - 2));
  for (;;) {
    const quoted = JSON.stringify(text.slice(0, n));
    const size = Buffer.byteLength(quoted);
    if (size <= budget || n === 0) return quoted;
    n = Math.min(n - 1, Math.floor((n * budget) / size));
  }
}
