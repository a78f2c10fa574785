import type { Endpoint } from '../downstream/endpoint.ts';
import type { Logger } from '../log.ts';
import type { AuditLog } from '../ops/audit-log.ts';
import { errorClass } from '../ops/audit-line.ts';
import type { EventJournal } from '../ops/event-journal.ts';
import type { EndpointMetrics } from '../ops/mux-metrics.ts';
import { refusal } from '../policy/policy.ts';
import { EXTENSION_PREFIX } from '../policy/presets.ts';
import type { ClientCommand, QemuSide, ReplySlot, Session } from '../qmp/session.ts';
import type { UpstreamMessage } from '../qmp/upstream-framer.ts';
import { encodeCommand, errorReply } from '../qmp/wire.ts';
import type { CommandObserver, Dispatcher, Lane, UpstreamCommand } from './dispatcher.ts';
import { filterCommandList, runOwnCommand, type MuxView, type OwnCommandContext } from './own-commands.ts';
import type { ClientRegistry } from './registry.ts';

/**
 * Bytes of one out-of-band command at most. QEMU runs such commands (yank,
 * migrate-pause, migrate-recover) as soon as it reads them, ahead of
 * anything queued; they are small by nature, so a large one is refused
 * rather than let it jump every queue.
 */
export const MAX_OOB_COMMAND_BYTES = 1024;

/** Counts kept across every client's router. */
export interface RouterCounters {
  /** Commands refused by a policy. */
  refused: number;
  /** Commands refused because they would not fit in one QEMU message. */
  tooLarge: number;
  /**
   * Other error replies qmp-mux made itself: its own commands that failed,
   * and replies from QEMU too long to pass on (where QEMU had returned).
   */
  errors: number;
}

export interface RouterOptions {
  endpoint: Endpoint;
  /** The client: its number and peer, as in `query-clients` and log lines. */
  client: { number: number; peer: string };
  dispatcher: Dispatcher;
  registry: ClientRegistry;
  view: MuxView;
  journal: EventJournal;
  metrics: EndpointMetrics;
  audit: AuditLog | undefined;
  counters: RouterCounters;
  log: Logger;
}

/**
 * Where one client's valid commands go: refused by its endpoint's policy,
 * answered by qmp-mux itself, or encoded for QEMU and queued in the
 * client's lane (out-of-band ones sent at once). Each command's outcome is
 * counted and, where the audit log wants it, recorded.
 */
export class Router implements QemuSide, CommandObserver {
  /** Commands passed on to QEMU. */
  commandsSent = 0;
  /** Where its commands wait for their turn to QEMU. */
  readonly lane: Lane;
  /** A command too large for the endpoint has been logged for this client (one line per client, not per command). */
  private loggedTooLarge = false;
  /** Likewise for a reply from QEMU too large to pass on. */
  private loggedTooLargeReply = false;
  private session: Session | undefined;
  private readonly own: OwnCommandContext;

  constructor(private readonly options: RouterOptions) {
    this.lane = options.dispatcher.lane();
    this.own = {
      view: options.view,
      journal: options.journal,
      endpoint: options.endpoint,
      setEvents: (patterns) => {
        if (this.session) options.registry.choose(options.endpoint, this.session, patterns);
      },
    };
  }

  command(command: ClientCommand, reply: ReplySlot): void {
    const { endpoint, counters, log, client, metrics, audit } = this.options;
    const receivedAt = performance.now();
    const refused = endpoint.policy.check(command.name, command.args);
    if (refused) {
      counters.refused++;
      metrics.refused(command.name);
      audit?.refusal(this.auditEntry(command.name, command.idText, command.args));
      const action = refused.kind === 'action' ? refused.action : undefined;
      log.warn('refused a command', { endpoint: endpoint.name, client: client.peer, command: command.name, action, why: refused.kind });
      reply.fill(errorReply(command.idText, 'GenericError', refusal(command.name, endpoint.name, refused)));
      return;
    }
    if (command.name.startsWith(EXTENSION_PREFIX)) {
      const own = runOwnCommand(command, this.own);
      if (own.outcome !== 'return') counters.errors++;
      this.done(command.name, command.idText, command.args, own.outcome, receivedAt, undefined);
      reply.fill(own.reply);
      return;
    }
    const { maxCommandBytes } = endpoint.options.limits;
    const cap =
      command.oob && MAX_OOB_COMMAND_BYTES < maxCommandBytes
        ? { maxBytes: MAX_OOB_COMMAND_BYTES, endpoint: endpoint.name, setting: 'the limit for exec-oob' }
        : { maxBytes: maxCommandBytes, endpoint: endpoint.name, setting: 'its maxCommandBytes' };
    const bytes = encodeCommand(command.name, command.args, command.oob, cap);
    if (!Buffer.isBuffer(bytes)) {
      counters.tooLarge++;
      if (!this.loggedTooLarge) {
        this.loggedTooLarge = true;
        log.warn('refused a command too large (said once per client)', { endpoint: endpoint.name, client: client.peer, command: command.name, why: bytes.tooLarge });
      }
      this.done(command.name, command.idText, command.args, 'GenericError', receivedAt, undefined);
      reply.fill(errorReply(command.idText, 'GenericError', bytes.tooLarge));
      return;
    }
    this.commandsSent++;
    const upstream: UpstreamCommand = {
      name: command.name,
      bytes,
      oob: command.oob,
      idText: command.idText,
      receivedAt,
      observer: this,
      ...(command.name === 'query-commands' && { transform: filterCommandList(endpoint.policy) }),
      ...(audit?.recordsCommand(command.name) && { args: command.args }),
    };
    this.lane.enqueue(upstream, reply);
  }

  answered(command: UpstreamCommand, reply: UpstreamMessage, qemuSeconds: number): void {
    if (reply.tooLarge && !this.loggedTooLargeReply) {
      this.loggedTooLargeReply = true;
      const { endpoint, client, log } = this.options;
      log.warn("QEMU's reply was longer than qmp-mux passes on; the client gets an error instead (said once per client)", {
        endpoint: endpoint.name,
        client: client.peer,
        command: command.name,
        bytes: reply.tooLarge.length,
        maxUpstreamMessage: reply.tooLarge.limit,
      });
    }
    // QEMU's own errors are counted as they arrive; a return too long to pass on becomes an error here.
    if (reply.tooLarge && reply.kind === 'return') this.options.counters.errors++;
    const outcome = reply.tooLarge ? 'GenericError' : reply.kind === 'return' ? 'return' : errorClass(reply.bytes);
    this.done(command.name, command.idText, command.args, outcome, command.receivedAt!, qemuSeconds);
  }

  subscribe(session: Session): void {
    this.session = session;
    this.options.registry.subscribe(this.options.endpoint, session);
  }

  closed(session: Session): void {
    this.lane.close();
    this.options.registry.unsubscribe(this.options.endpoint, session);
  }

  /** A command's outcome, counted and, if the audit log wants it, recorded. */
  private done(name: string, idText: string | undefined, args: ClientCommand['args'], outcome: string, receivedAt: number, qemuSeconds: number | undefined): void {
    this.options.metrics.commandDone(name, outcome, (performance.now() - receivedAt) / 1000, qemuSeconds);
    this.options.audit?.command({ ...this.auditEntry(name, idText, args), outcome, qemuSeconds });
  }

  private auditEntry(command: string, idText: string | undefined, args: ClientCommand['args']) {
    const { endpoint, client } = this.options;
    return { endpoint: endpoint.name, client: client.number, peer: client.peer, command, idText, arguments: args };
  }
}
