import type { Endpoint } from '../downstream/endpoint.ts';
import type { Logger } from '../log.ts';
import { refusal } from '../policy/policy.ts';
import { EXTENSION_PREFIX } from '../policy/presets.ts';
import type { ClientCommand, QemuSide, ReplySlot, Session } from '../qmp/session.ts';
import { encodeCommand, errorReply } from '../qmp/wire.ts';
import type { Dispatcher, Lane } from './dispatcher.ts';
import { filterCommandList, runOwnCommand, type MuxView } from './own-commands.ts';
import type { ClientRegistry } from './registry.ts';

/** Counts kept across every client's router. */
export interface RouterCounters {
  /** Commands refused by a policy. */
  refused: number;
  /** Commands refused because they would not fit in one QEMU message. */
  tooLarge: number;
}

export interface RouterOptions {
  endpoint: Endpoint;
  /** The client, for log lines. */
  client: string;
  dispatcher: Dispatcher;
  registry: ClientRegistry;
  view: MuxView;
  counters: RouterCounters;
  log: Logger;
}

/**
 * Where one client's valid commands go: refused by its endpoint's policy,
 * answered by qmp-mux itself, or encoded for QEMU and queued in the
 * client's lane (out-of-band ones sent at once).
 */
export class Router implements QemuSide {
  /** Commands passed on to QEMU. */
  commandsSent = 0;
  private readonly lane: Lane;

  constructor(private readonly options: RouterOptions) {
    this.lane = options.dispatcher.lane();
  }

  command(command: ClientCommand, reply: ReplySlot): void {
    const { endpoint, counters, log, client } = this.options;
    if (!endpoint.policy.allows(command.name)) {
      counters.refused++;
      log.warn('refused a command', { endpoint: endpoint.name, client, command: command.name });
      reply.fill(errorReply(command.idText, 'GenericError', refusal(command.name, endpoint.name)));
      return;
    }
    if (command.name.startsWith(EXTENSION_PREFIX)) {
      reply.fill(runOwnCommand(command, this.options.view));
      return;
    }
    const bytes = encodeCommand(command.name, command.args, command.oob);
    if (!Buffer.isBuffer(bytes)) {
      counters.tooLarge++;
      log.warn('refused a command too large for QEMU', { endpoint: endpoint.name, client, command: command.name, why: bytes.tooLarge });
      reply.fill(errorReply(command.idText, 'GenericError', bytes.tooLarge));
      return;
    }
    this.commandsSent++;
    const transform = command.name === 'query-commands' ? filterCommandList(endpoint.policy) : undefined;
    const upstream = { name: command.name, bytes, oob: command.oob, idText: command.idText, ...(transform && { transform }) };
    if (command.oob) this.options.dispatcher.sendOob(upstream, reply);
    else this.lane.enqueue(upstream, reply);
  }

  subscribe(session: Session): void {
    this.options.registry.subscribe(this.options.endpoint, session);
  }

  closed(session: Session): void {
    this.lane.close();
    this.options.registry.unsubscribe(this.options.endpoint, session);
  }
}
