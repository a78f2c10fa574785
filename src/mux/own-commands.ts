import type { ClientConnection } from '../downstream/client-connection.ts';
import { readQueryEventsArguments, readSetEventsArguments } from '../events/commands.ts';
import type { EventJournal } from '../events/journal.ts';
import { JsonStreamer } from '../json/streamer.ts';
import { isObject, JsonNumber, type JsonObject, type JsonValue } from '../json/value.ts';
import type { AuditStats } from '../ops/audit-log.ts';
import { globMatcher } from '../policy/glob.ts';
import type { Policy } from '../policy/policy.ts';
import type { ErrorClass } from '../qmp/error-classes.ts';
import { LOCK, OWN_COMMANDS, QUERY_CLIENTS, QUERY_EVENTS, QUERY_LOCK, QUERY_PROXY, SET_EVENTS, UNLOCK } from '../qmp/extensions.ts';
import type { ClientCommand } from '../qmp/monitor-session.ts';
import type { UpstreamMessage } from '../qmp/upstream-message.ts';
import { errorReply, negotiatedReply, queryEventsReply, returnReply, rewrittenReply } from '../qmp/wire.ts';
import { grantedValue, lockValue, readLockArguments } from './lock-commands.ts';
import type { LockAnswer, LockParty, LockSnapshot, UnlockAnswer } from './lock-model.ts';
import type { MonitorLock } from './monitor-lock.ts';

export interface ClientInfo {
  client: number;
  endpoint: string;
  peer: string;
  /** The identity its certificate matched, if its endpoint has identities. */
  identity: string | undefined;
  /** Its certificate's subject, on a TLS endpoint with client certificates. */
  subject: string | undefined;
  connectedSince: Date;
  negotiated: boolean;
  commands: number;
  inFlight: number;
  bytesQueued: number;
  /** The event patterns it receives (its own, else its access's). */
  events: readonly string[];
  /** It holds the lock (or is being granted it), or waits for it. */
  lock: 'holds' | 'waits' | undefined;
  /** Its commands waiting behind a lock. */
  waitingCommands: number;
}

export interface MuxInfo {
  version: string;
  uptimeSeconds: number;
  upstreamState: string;
  upstreamMode: string;
  /** QEMU's VersionInfo, when connected. */
  qemu: JsonValue | undefined;
  clients: number;
  /** The newest event's sequence number (0 before the first). */
  lastEvent: number;
  /** How long the oldest command QEMU has not answered has waited, ms (0 when none). */
  oldestCommandMs: number;
  /** Bytes of client commands waiting in qmp-mux for their turn to QEMU. */
  queuedBytes: number;
  counters: {
    commands: number;
    events: number;
    errors: number;
    refused: number;
    tooLarge: number;
    /** Commands refused, or not run, because of another client's lock. */
    locked: number;
    /** Messages from QEMU longer than qmp-mux passes on. */
    tooLargeFromQemu: number;
    replyMismatches: number;
    disconnects: Record<string, number>;
  };
  /** The audit log's totals, when there is one. */
  audit: AuditStats | undefined;
  /** The monitor's lock, when one is held or being granted. */
  lock: LockSnapshot | undefined;
}

/** What qmp-mux's own commands read of the whole mux. */
export interface MuxView {
  listClients(): ClientInfo[];
  describe(): MuxInfo;
}

/** What qmp-mux's own commands need, for the client running one. */
export interface OwnCommandContext {
  view: MuxView;
  journal: EventJournal;
  /** Whether the client's access (its endpoint's, or its identity's) lets event `name` through: it bounds what `query-events` returns. */
  wantsEvent(name: string): boolean;
  /** Narrows the events the client receives live (`set-events`). */
  setEvents(patterns: string[]): void;
  /** The monitor's lock, and the client's place at it. */
  lock: MonitorLock;
  party: LockParty;
}

/** A count as a JSON number. */
const count = (n: number): JsonNumber => new JsonNumber(String(n), Number.isInteger(n));
/** A JSON object of the members given, those undefined left out. */
const members = (entries: [string, JsonValue | undefined][]): JsonObject => new Map(entries.filter((e): e is [string, JsonValue] => e[1] !== undefined));

/** The reply to one of qmp-mux's own commands, and its outcome (`return`, or the error class). */
export interface OwnReply {
  reply: string | Buffer;
  /** `locked`: a lock request refused because another client has the lock. */
  outcome: 'return' | 'locked' | ErrorClass;
}

/**
 * Runs one of qmp-mux's own commands. Returns its reply, or undefined when
 * the reply comes later, through `later` (a lock request that waits, an
 * unlock that waits for the commands sent before it).
 */
export function runOwnCommand(command: ClientCommand, context: OwnCommandContext, later: (reply: OwnReply) => void): OwnReply | undefined {
  const { idText, args } = command;
  const error = (errorClass: ErrorClass, desc: string): OwnReply => ({ reply: errorReply(idText, errorClass, desc), outcome: errorClass });
  switch (command.name) {
    case QUERY_CLIENTS:
    case QUERY_PROXY:
    case QUERY_LOCK: {
      const extra = args ? [...args.keys()][0] : undefined;
      if (extra !== undefined) return error('GenericError', `Parameter '${extra}' is unexpected`);
      const value = command.name === QUERY_CLIENTS ? clientsValue(context.view) : command.name === QUERY_PROXY ? proxyValue(context.view) : lockValue(context.lock.snapshot(), context.party);
      return { reply: returnReply(idText, value), outcome: 'return' };
    }
    case QUERY_EVENTS: {
      const asked = readQueryEventsArguments(args);
      if (asked.error !== undefined) return error('GenericError', asked.error);
      const wanted = asked.events && globMatcher(asked.events);
      const result = context.journal.since(asked.since, (name) => context.wantsEvent(name) && (!wanted || wanted(name)));
      return { reply: queryEventsReply(idText, result), outcome: 'return' };
    }
    case SET_EVENTS: {
      const asked = readSetEventsArguments(args);
      if (asked.error !== undefined) return error('GenericError', asked.error);
      context.setEvents(asked.events);
      return { reply: negotiatedReply(idText), outcome: 'return' };
    }
    case LOCK: {
      // Its answer may have to wait, so it cannot overtake: QEMU's words for a command that does not support OOB.
      if (command.oob) return error('GenericError', `The command ${LOCK} does not support OOB`);
      const asked = readLockArguments(args);
      if ('error' in asked) return error('GenericError', asked.error);
      const answer = (a: LockAnswer): OwnReply =>
        'granted' in a ? { reply: returnReply(idText, grantedValue(a.granted)), outcome: 'return' } : { reply: errorReply(idText, 'GenericError', a.refused), outcome: 'locked' };
      const now = context.lock.request(context.party, asked, (a) => later(answer(a)));
      return now && answer(now);
    }
    case UNLOCK: {
      const extra = args ? [...args.keys()][0] : undefined;
      if (extra !== undefined) return error('GenericError', `Parameter '${extra}' is unexpected`);
      const answer = (a: UnlockAnswer): OwnReply => ('ended' in a ? { reply: negotiatedReply(idText), outcome: 'return' } : error('GenericError', a.refused));
      const now = context.lock.unlock(context.party, (a) => later(answer(a)));
      return now && answer(now);
    }
    default:
      return error('CommandNotFound', `The command ${command.name} has not been found`);
  }
}

/** What `query-clients` says of a client; `chosen`: the event patterns it chose, if it chose. */
export function clientInfo(c: ClientConnection, chosen: readonly string[] | undefined): Omit<ClientInfo, 'lock' | 'waitingCommands'> {
  return {
    client: c.number,
    endpoint: c.endpoint.name,
    peer: c.peer,
    identity: c.access.identity,
    subject: c.certificate?.subject,
    connectedSince: c.connectedAt,
    negotiated: c.session?.state === 'command',
    commands: c.route?.commandsSent ?? 0,
    inFlight: c.session?.pending ?? 0,
    bytesQueued: c.bytesQueued,
    events: chosen ?? c.access.events,
  };
}

/** What `query-clients` returns. */
export function clientsValue(view: MuxView): JsonValue[] {
  return view.listClients().map((c) =>
    members([
      ['client', count(c.client)],
      ['endpoint', c.endpoint],
      ['peer', c.peer],
      ['identity', c.identity],
      ['subject', c.subject],
      ['connected-since', c.connectedSince.toISOString()],
      ['negotiated', c.negotiated],
      ['commands', count(c.commands)],
      ['in-flight', count(c.inFlight)],
      ['bytes-queued', count(c.bytesQueued)],
      ['events', [...c.events]],
      ['lock', c.lock],
      ['waiting-commands', c.waitingCommands > 0 ? count(c.waitingCommands) : undefined],
    ]),
  );
}

/** What `query-proxy` returns. */
export function proxyValue(view: MuxView): JsonObject {
  const i = view.describe();
  return members([
    ['version', i.version],
    ['uptime', count(Math.floor(i.uptimeSeconds))],
    ['upstream', members([['state', i.upstreamState], ['mode', i.upstreamMode], ['qemu', i.qemu], ['oldest-command-ms', count(Math.round(i.oldestCommandMs))]])],
    ['clients', count(i.clients)],
    ['last-event', count(i.lastEvent)],
    ['queued-bytes', count(i.queuedBytes)],
    [
      'counters',
      members([
        ['commands', count(i.counters.commands)],
        ['events', count(i.counters.events)],
        ['errors', count(i.counters.errors)],
        ['refused', count(i.counters.refused)],
        ['too-large', count(i.counters.tooLarge)],
        ['locked', count(i.counters.locked)],
        ['too-large-from-qemu', count(i.counters.tooLargeFromQemu)],
        ['reply-mismatches', count(i.counters.replyMismatches)],
        ['disconnects', members(Object.entries(i.counters.disconnects).map(([k, v]) => [k, count(v)]))],
      ]),
    ],
    ['audit', i.audit && members([['written', count(i.audit.written)], ['dropped', count(i.audit.dropped)], ['buffered-bytes', count(i.audit.bufferedBytes)]])],
    ['lock', i.lock && lockValue(i.lock)],
  ]);
}

/**
 * Rewrites QEMU's `query-commands` reply to list what `policy` allows
 * (with some arguments at least), plus the allowed commands of qmp-mux's own.
 */
export function filterCommandList(policy: Policy): (reply: UpstreamMessage) => UpstreamMessage {
  return (reply) => {
    let value: JsonValue | undefined;
    new JsonStreamer((m) => (value = m.value)).feed(reply.bytes);
    const list = isObject(value) ? value.get('return') : undefined;
    if (!isObject(value) || !Array.isArray(list)) return reply;
    const kept = list.filter((entry) => {
      const name = isObject(entry) ? entry.get('name') : undefined;
      return typeof name === 'string' && policy.mayAllow(name);
    });
    for (const name of OWN_COMMANDS) if (policy.mayAllow(name)) kept.push(new Map([['name', name]]));
    value.set('return', kept);
    // Anew, not spread from QEMU's: the pieces QEMU's reply came in must not go to the client in place of these bytes.
    return { kind: reply.kind, id: reply.id, event: reply.event, bytes: rewrittenReply(value) };
  };
}
