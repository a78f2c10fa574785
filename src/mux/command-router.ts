import type { CommandRoute } from '../downstream/client-route.ts';
import type { Access } from '../downstream/access.ts';
import type { Endpoint } from '../downstream/endpoint.ts';
import type { CertificateNames } from '../downstream/identity.ts';
import type { IdentityMetrics } from '../ops/identity-metrics.ts';
import type { EndpointMetrics } from '../ops/mux-metrics.ts';
import { refusal } from '../policy/policy.ts';
import { EXTENSION_PREFIX, LOCK, UNLOCK } from '../qmp/extensions.ts';
import type { ClientCommand, ReplySlot } from '../qmp/monitor-session.ts';
import { encodeCommand, errorReply, type CommandCap, type CommandEncoder, type WireData } from '../qmp/wire.ts';
import { invariant } from '../util/assert.ts';
import type { CommandReport, ReadCommand } from './command-report.ts';
import type { Dispatcher } from './dispatcher.ts';
import type { Lane, LaneOwner } from './lane.ts';
import { heldBackText, lockResetText, notRunText, unlockResetText } from './lock-commands.ts';
import { changesState, type LockParty, type LockReset, type PartyHooks } from './lock-model.ts';
import type { MonitorLock } from './monitor-lock.ts';
import { filterCommandList, runOwnCommand, type OwnCommandContext, type OwnReply } from './own-commands.ts';
import type { Requester } from './upstream-command.ts';
import { WaitingCommands } from './waiting-commands.ts';

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
  /** The monitor's lock. */
  lock: MonitorLock;
  /** What qmp-mux's own commands need, for this client (its place at the lock is the router's). */
  own: Omit<OwnCommandContext, 'lock' | 'party'>;
}

/** Where a command went: on its way (or answered), held back by a lock, or a lock request whose answer comes later. */
type Routed = 'done' | 'held' | 'asking';

/**
 * Where one client's valid commands go: refused by its access's policy
 * (its endpoint's, or its identity's), answered by qmp-mux itself, refused
 * as too large, held back by another client's lock (waiting, or refused,
 * as its endpoint says), or encoded for QEMU and queued in the client's
 * lane at the dispatcher. Every outcome is reported to the command report.
 */
export class CommandRouter implements CommandRoute, PartyHooks {
  commandsSent = 0;
  private readonly lane: Lane;
  private readonly from: Requester;
  /** The access the caps and the requester's identity are of. */
  private access!: Access;
  private cap!: CommandCap;
  private oobCap!: CommandCap;
  private readonly party: LockParty;
  private readonly own: OwnCommandContext;
  private readonly waiting: WaitingCommands;
  /** Its client is not read for want of room behind a lock: tell it when there is. */
  private roomWanted = false;
  private closed = false;

  constructor(private readonly options: CommandRouterOptions) {
    const { endpoint, client, metrics, lock } = options;
    this.lane = options.dispatcher.lane(client);
    this.from = {
      endpoint: endpoint.name,
      client: client.number,
      peer: client.peer,
      identity: undefined,
      subject: client.certificate?.subject,
      metrics,
      identityMetrics: undefined,
      said: { tooLarge: false, tooLargeReply: false, refusals: 0 },
    };
    this.follow(client.access);
    // Its requester is who it is at the lock too: the identity there follows reloads.
    this.party = lock.join(this.from, this);
    this.own = { ...options.own, lock, party: this.party };
    this.waiting = new WaitingCommands(lock, this.party);
  }

  command(command: ClientCommand, reply: ReplySlot): void {
    const { endpoint, report, lock } = this.options;
    const { policy, identity } = this.current();
    const read: ReadCommand = { name: command.name, idText: command.idText, args: command.args, receivedAt: performance.now() };
    const refused = policy.check(command.name, command.args);
    // An unlock only gives back: a holder may end its lock whatever a reload made of its policy.
    if (refused && !(command.name === UNLOCK && lock.holding?.party === this.party)) {
      report.refused(this.from, read, refused);
      reply.fill(errorReply(command.idText, 'GenericError', refusal(command.name, endpoint.name, refused, identity)));
      return;
    }
    lock.active(this.party, command.name);
    // Out-of-band commands never wait: their replies may overtake, and they must not queue behind in-band ones.
    const routed = this.waiting.length > 0 && !command.oob ? 'behind' : this.route(command, reply, read);
    if (routed !== 'done') this.wait(command, reply, read, routed);
  }

  get refused(): number {
    return this.from.said.refusals;
  }

  holdsTooMuch(held: number): boolean {
    const { dispatcher, client, lock } = this.options;
    const { maxInputBytes } = client.access.limits;
    const waiting = this.party.waitingBytes;
    if (waiting > 0 && waiting + held >= maxInputBytes) {
      this.roomWanted = true;
      return true;
    }
    if (dispatcher.full(this.lane, maxInputBytes, held + waiting)) return true;
    return (waiting > 0 || this.lane.queuedBytes > 0) && lock.waitingBytes > 0 && lock.crowded(this.party, dispatcher.stats.queuedBytes, dispatcher.totalInputBytes);
  }

  close(): void {
    this.closed = true;
    this.options.lock.leave(this.party);
    this.waiting.clear();
    this.options.dispatcher.close(this.lane);
  }

  // PartyHooks

  lockChanged(): void {
    this.resume();
  }

  lockReset(why: LockReset): void {
    for (let w = this.waiting.shift(); w; w = this.waiting.shift()) {
      const { command } = w;
      const mode = command.args?.get('mode') === 'exclusive' ? 'exclusive' : 'write';
      const text = !w.asking ? notRunText(command.name, why) : command.name === LOCK ? lockResetText(mode, why) : unlockResetText(why);
      this.options.report.locked(this.from, w.read);
      w.reply.fill(errorReply(command.idText, 'GenericError', text));
    }
  }

  room(): void {
    this.options.client.room();
  }

  /** Sends a command on its way, or says why it must wait. */
  private route(command: ClientCommand, reply: ReplySlot, read: ReadCommand): Routed {
    const { endpoint, report, dispatcher, lock } = this.options;
    // A command that waited may go after a reload gave its client another access.
    const { policy } = this.current();
    if (command.name.startsWith(EXTENSION_PREFIX)) {
      const own = runOwnCommand(command, this.own, (later) => this.answeredLater(later));
      if (own === undefined) return 'asking';
      report.answeredHere(this.from, read, own.outcome);
      reply.fill(own.reply);
      return 'done';
    }
    const bytes = this.options.encoder.encode(command.name, command.args, command.oob, command.oob ? this.oobCap : this.cap);
    if (!Buffer.isBuffer(bytes)) {
      report.tooLarge(this.from, read, bytes.tooLarge);
      reply.fill(errorReply(command.idText, 'GenericError', bytes.tooLarge));
      return 'done';
    }
    const changing = changesState(command.name, command.args);
    const holding = lock.blocks(this.party, changing);
    if (holding) {
      if (!command.oob && endpoint.options.whenLocked === 'wait') return 'held';
      report.locked(this.from, read);
      reply.fill(errorReply(command.idText, 'GenericError', heldBackText(command.name, holding, command.oob)));
      return 'done';
    }
    this.commandsSent++;
    lock.sent(this.party, changing);
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
      new AnsweredSlot(lock, this.party, changing, reply),
    );
    return 'done';
  }

  /** A command waits: held back, a lock request not yet answered, or behind one of those. */
  private wait(command: ClientCommand, reply: ReplySlot, read: ReadCommand, why: Routed | 'behind'): void {
    const encoded = encodeCommand(command.name, command.args, false);
    const bytes = Buffer.isBuffer(encoded) ? encoded.length : this.options.client.access.limits.maxMessageSize;
    this.waiting.push({ command, reply, read, bytes, asking: why === 'asking', held: why === 'held' });
    if (why === 'held') this.options.lock.holdBack(this.party, true);
  }

  /** Sends on the commands waiting, in order, as far as the lock lets them go. */
  private resume(): void {
    for (let w = this.waiting.peek(); w !== undefined && !this.closed; w = this.waiting.peek()) {
      if (w.asking) return;
      const routed = this.route(w.command, w.reply, w.read);
      if (this.closed) return;
      if (routed === 'held') {
        this.options.lock.holdBack(this.party, !w.held);
        w.held = true;
        return;
      }
      if (routed === 'asking') {
        w.asking = true;
        return;
      }
      this.waiting.shift();
    }
    if (this.roomWanted && !this.closed) {
      this.roomWanted = false;
      this.options.client.room();
    }
  }

  /** Its client's access now, followed if a reload gave it another. */
  private current(): Access {
    const { access } = this.options.client;
    if (access !== this.access) this.follow(access);
    return access;
  }
  /** The client has this access from now on (at first, and after a reload gave it another). */
  private follow(access: Access): void {
    this.access = access;
    [this.cap, this.oobCap] = caps(this.options.endpoint.name, access);
    this.from.identity = access.identity;
    this.from.identityMetrics = this.options.identityMetrics(access);
  }

  /** The answer to a lock request (or an unlock) that waited: the oldest waiting command. */
  private answeredLater(own: OwnReply): void {
    if (this.closed) return;
    const w = this.waiting.shift();
    invariant(w?.asking, 'a lock request waiting for its answer');
    this.options.report.answeredHere(this.from, w.read, own.outcome);
    w.reply.fill(own.reply);
    this.resume();
  }
}

/** A command's reply slot that tells the lock when QEMU has answered it. */
class AnsweredSlot implements ReplySlot {
  constructor(
    private readonly lock: MonitorLock,
    private readonly party: LockParty,
    private readonly changing: boolean,
    private readonly slot: ReplySlot,
  ) {}

  fill(reply: WireData): void {
    this.lock.answered(this.party, this.changing);
    this.slot.fill(reply);
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
