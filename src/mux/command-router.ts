import type { CommandRoute } from '../downstream/client-route.ts';
import type { Access } from '../downstream/access.ts';
import type { Endpoint } from '../downstream/endpoint.ts';
import type { CertificateNames } from '../downstream/identity.ts';
import type { IdentityMetrics } from '../ops/identity-metrics.ts';
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
  /**
   * The client: its number and peer (as in `query-clients` and log lines),
   * its access (read at each command: a reload may change it) and
   * certificate; told of room and of lost replies.
   */
  client: LaneOwner & { readonly number: number; readonly peer: string; readonly access: Access; readonly certificate: CertificateNames | undefined };
  metrics: EndpointMetrics;
  /** The metrics of an identity's clients (undefined for an endpoint's own access). */
  identityMetrics(access: Access): IdentityMetrics | undefined;
  dispatcher: Dispatcher;
  encoder: CommandEncoder;
  report: CommandReport;
  /** What qmp-mux's own commands need, for this client. */
  own: OwnCommandContext;
}

/**
 * Where one client's valid commands go: refused by its access's policy
 * (its endpoint's, or its identity's),
 * answered by qmp-mux itself, refused as too large, or encoded for QEMU and
 * queued in the client's lane at the dispatcher. Every outcome is reported
 * to the command report.
 */
export class CommandRouter implements CommandRoute {
  commandsSent = 0;
  private readonly lane: Lane;
  private readonly from: Requester;
  /** The access the caps and the requester's identity are of. */
  private access!: Access;
  private cap!: CommandCap;
  private oobCap!: CommandCap;

  constructor(private readonly options: CommandRouterOptions) {
    const { endpoint, client, metrics } = options;
    this.lane = options.dispatcher.lane(client);
    this.from = {
      endpoint: endpoint.name,
      client: client.number,
      peer: client.peer,
      identity: undefined,
      subject: client.certificate?.subject,
      metrics,
      identityMetrics: undefined,
      said: { tooLarge: false, tooLargeReply: false },
    };
    this.follow(client.access);
  }

  command(command: ClientCommand, reply: ReplySlot): void {
    const { endpoint, report, dispatcher, client } = this.options;
    if (client.access !== this.access) this.follow(client.access);
    const { policy } = this.access;
    const read: ReadCommand = { name: command.name, idText: command.idText, args: command.args, receivedAt: performance.now() };
    const refused = policy.check(command.name, command.args);
    if (refused) {
      report.refused(this.from, read, refused);
      reply.fill(errorReply(command.idText, 'GenericError', refusal(command.name, endpoint.name, refused, this.access.identity)));
      return;
    }
    if (command.name.startsWith(EXTENSION_PREFIX)) {
      const own = runOwnCommand(command, this.options.own);
      report.answeredHere(this.from, read, own.outcome);
      reply.fill(own.reply);
      return;
    }
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
        ...(command.name === 'query-commands' && { transform: filterCommandList(policy) }),
        ...(report.recordsCommand(command.name) && { args: command.args }),
      },
      reply,
    );
  }

  holdsTooMuch(held: number): boolean {
    return this.options.dispatcher.full(this.lane, this.options.client.access.limits.maxInputBytes, held);
  }

  close(): void {
    this.options.dispatcher.close(this.lane);
  }

  /** The client has this access from now on (at first, and after a reload gave it another). */
  private follow(access: Access): void {
    this.access = access;
    [this.cap, this.oobCap] = caps(this.options.endpoint.name, access);
    this.from.identity = access.identity;
    this.from.identityMetrics = this.options.identityMetrics(access);
  }
}

/** The caps on an access's in-band and out-of-band commands. */
function caps(endpoint: string, access: Access): [CommandCap, CommandCap] {
  const { maxCommandBytes } = access.limits;
  const setting = access.identity === undefined ? 'its maxCommandBytes' : `the maxCommandBytes of identity '${access.identity}'`;
  const cap = { maxBytes: maxCommandBytes, endpoint, setting };
  const oob = MAX_OOB_COMMAND_BYTES < maxCommandBytes ? { maxBytes: MAX_OOB_COMMAND_BYTES, endpoint, setting: 'the limit for exec-oob' } : cap;
  return [cap, oob];
}
