import { JsonStreamer } from '../json/streamer.ts';
import { isObject, JsonNumber, type JsonObject, type JsonValue } from '../json/value.ts';
import { writeQemu } from '../json/writer.ts';
import type { ClientCommand } from '../qmp/session.ts';
import type { UpstreamMessage } from '../qmp/upstream-framer.ts';
import { errorReply, returnReply } from '../qmp/wire.ts';
import { EXTENSION_PREFIX } from '../policy/presets.ts';
import type { Policy } from '../policy/policy.ts';

/** qmp-mux's own commands, named after QMP's downstream-extension rule (`__RFQDN_name`). */
export const QUERY_CLIENTS = `${EXTENSION_PREFIX}query-clients`;
export const QUERY_PROXY = `${EXTENSION_PREFIX}query-proxy`;
export const EXTENSION_COMMANDS: readonly string[] = [QUERY_CLIENTS, QUERY_PROXY];

export interface ClientInfo {
  client: number;
  endpoint: string;
  peer: string;
  connectedSince: Date;
  negotiated: boolean;
  commands: number;
  inFlight: number;
  bytesQueued: number;
}

export interface MuxInfo {
  version: string;
  uptimeSeconds: number;
  upstreamState: string;
  upstreamMode: string;
  /** QEMU's VersionInfo, when connected. */
  qemu: JsonValue | undefined;
  clients: number;
  counters: { commands: number; events: number; errors: number; refused: number; tooLarge: number; replyMismatches: number; disconnects: Record<string, number> };
}

/** What the extension commands read. */
export interface MuxView {
  listClients(): ClientInfo[];
  describe(): MuxInfo;
}

const num = (n: number): JsonNumber => new JsonNumber(String(n), Number.isInteger(n));
const obj = (entries: [string, JsonValue | undefined][]): JsonObject => new Map(entries.filter((e): e is [string, JsonValue] => e[1] !== undefined));

/** Runs one of qmp-mux's own commands; the complete reply. */
export function runOwnCommand(command: ClientCommand, view: MuxView): string {
  const extra = command.args ? [...command.args.keys()][0] : undefined;
  if (extra !== undefined) return errorReply(command.idText, 'GenericError', `Parameter '${extra}' is unexpected`);
  switch (command.name) {
    case QUERY_CLIENTS:
      return returnReply(
        command.idText,
        view.listClients().map((c) =>
          obj([
            ['client', num(c.client)],
            ['endpoint', c.endpoint],
            ['peer', c.peer],
            ['connected-since', c.connectedSince.toISOString()],
            ['negotiated', c.negotiated],
            ['commands', num(c.commands)],
            ['in-flight', num(c.inFlight)],
            ['bytes-queued', num(c.bytesQueued)],
          ]),
        ),
      );
    case QUERY_PROXY: {
      const i = view.describe();
      return returnReply(
        command.idText,
        obj([
          ['version', i.version],
          ['uptime', num(Math.floor(i.uptimeSeconds))],
          ['upstream', obj([['state', i.upstreamState], ['mode', i.upstreamMode], ['qemu', i.qemu]])],
          ['clients', num(i.clients)],
          [
            'counters',
            obj([
              ['commands', num(i.counters.commands)],
              ['events', num(i.counters.events)],
              ['errors', num(i.counters.errors)],
              ['refused', num(i.counters.refused)],
              ['too-large', num(i.counters.tooLarge)],
              ['reply-mismatches', num(i.counters.replyMismatches)],
              ['disconnects', obj(Object.entries(i.counters.disconnects).map(([k, v]) => [k, num(v)]))],
            ]),
          ],
        ]),
      );
    }
    default:
      return errorReply(command.idText, 'CommandNotFound', `The command ${command.name} has not been found`);
  }
}

/**
 * Rewrites QEMU's `query-commands` reply to list what `policy` allows,
 * plus the allowed commands of qmp-mux's own.
 */
export function filterCommandList(policy: Policy): (reply: UpstreamMessage) => UpstreamMessage {
  return (reply) => {
    let value: JsonValue | undefined;
    new JsonStreamer((m) => (value = m.value)).feed(reply.bytes);
    const list = isObject(value) ? value.get('return') : undefined;
    if (!isObject(value) || !Array.isArray(list)) return reply;
    const kept = list.filter((entry) => {
      const name = isObject(entry) ? entry.get('name') : undefined;
      return typeof name === 'string' && policy.allows(name);
    });
    for (const name of EXTENSION_COMMANDS) if (policy.allows(name)) kept.push(new Map([['name', name]]));
    value.set('return', kept);
    return { ...reply, bytes: Buffer.from(writeQemu(value), 'latin1') };
  };
}
