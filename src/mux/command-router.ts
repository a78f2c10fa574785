import type { CommandRoute } from '../downstream/client-route.ts';
import type { Endpoint } from '../downstream/endpoint.ts';
import type { EndpointMetrics } from '../ops/mux-metrics.ts';
import { refusal } from '../policy/policy.ts';
import { EXTENSION_PREFIX } from '../qmp/extensions.ts';
import type { ClientCommand, ReplySlot } from '../qmp/monitor-session.ts';
import { errorReply, type CommandCap, type CommandEncoder } from '../qmp/wire.ts';
import type { CommandReport, ReadCommand } from './command-report.ts';
import type { Dispatcher } from './dispatcher.ts';
import type { Lane, LaneOwner } from './lane.ts';
import { filterCommandList, runOwnCommand, type OwnCommandContext } from './own-commands.ts';
import type { Requester } from './upstream-command.ts';

/**
 * Bytes of one out-of-band command at most. QEMU runs such commands (yank,
 * migrate-pause, migrate-recover) as soon as it reads them, ahead of
 * anything queued; they are small by nature, so a large one is refused
 * rather than let it jump every queue.
 */
export const MAX_OOB_COMMAND_BYTES = 1024;

export interface CommandRouterOptions {
  endpoint: Endpoint;
  /** The client: its number and peer (as in `query-clients` and log lines); told of room and of lost replies. */
  client: LaneOwner & { readonly number: number; readonly peer: string };
  metrics: EndpointMetrics;
  dispatcher: Dispatcher;
  encoder: CommandEncoder;
  report: CommandReport;
  /** What qmp-mux's own commands need, for this client. */
  own: OwnCommandContext;
}

/**
 * Where one client's valid commands go: refused by its endpoint's policy,
 * answered by qmp-mux itself, refused as too large, or encoded for QEMU and
 * queued in the client's lane at the dispatcher. Every outcome is reported
 * to the command report.
 */
export class CommandRouter implements CommandRoute {
  commandsSent = 0;
  private readonly lane: Lane;
  private readonly from: Requester;
  private cap: CommandCap;
  private oobCap: CommandCap;

  constructor(private readonly options: CommandRouterOptions) {
    const { endpoint, client, metrics } = options;
    this.lane = options.dispatcher.lane(client);
    this.from = { endpoint: endpoint.name, client: client.number, peer: client.peer, metrics, said: { tooLarge: false, tooLargeReply: false } };
    [this.cap, this.oobCap] = caps(endpoint);
  }

  command(command: ClientCommand, reply: ReplySlot): void {
    const { endpoint, report, dispatcher } = this.options;
    const read: ReadCommand = { name: command.name, idText: command.idText, args: command.args, receivedAt: performance.now() };
    const refused = endpoint.policy.check(command.name, command.args);
    if (refused) {
      report.refused(this.from, read, refused);
      reply.fill(errorReply(command.idText, 'GenericError', refusal(command.name, endpoint.name, refused)));
      return;
    }
    if (command.name.startsWith(EXTENSION_PREFIX)) {
      const own = runOwnCommand(command, this.options.own);
      report.answeredHere(this.from, read, own.outcome);
      reply.fill(own.reply);
      return;
    }
    // A reload may have changed the limit.
    if (this.cap.maxBytes !== endpoint.options.limits.maxCommandBytes) [this.cap, this.oobCap] = caps(endpoint);
    const bytes = this.options.encoder.encode(command.name, command.args, command.oob, command.oob ? this.oobCap : this.cap);
    if (!Buffer.isBuffer(bytes)) {
      report.tooLarge(this.from, read, bytes.tooLarge);
      reply.fill(errorReply(command.idText, 'GenericError', bytes.tooLarge));
      return;
    }
    this.commandsSent++;
    dispatcher.enqueue(
      this.lane,
      {
        name: command.name,
        bytes,
        oob: command.oob,
        idText: command.idText,
        from: this.from,
        receivedAt: read.receivedAt,
        ...(command.name === 'query-commands' && { transform: filterCommandList(endpoint.policy) }),
        ...(report.recordsCommand(command.name) && { args: command.args }),
      },
      reply,
    );
  }

  holdsTooMuch(held: number): boolean {
    return this.options.dispatcher.full(this.lane, this.options.endpoint.options.limits.maxInputBytes, held);
  }

  close(): void {
    this.options.dispatcher.close(this.lane);
  }
}

/** The caps on an endpoint's in-band and out-of-band commands. */
function caps(endpoint: Endpoint): [CommandCap, CommandCap] {
  const { maxCommandBytes } = endpoint.options.limits;
  const cap = { maxBytes: maxCommandBytes, endpoint: endpoint.name, setting: 'its maxCommandBytes' };
  const oob = MAX_OOB_COMMAND_BYTES < maxCommandBytes ? { maxBytes: MAX_OOB_COMMAND_BYTES, endpoint: endpoint.name, setting: 'the limit for exec-oob' } : cap;
  return [cap, oob];
}
