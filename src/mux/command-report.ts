import type { Logger } from '../log.ts';
import type { AuditLog } from '../ops/audit-log.ts';
import { errorClass } from '../ops/audit-line.ts';
import type { JsonObject } from '../json/value.ts';
import type { Refusal } from '../policy/policy.ts';
import type { UpstreamMessage } from '../qmp/upstream-message.ts';
import type { Requester, UpstreamCommand } from './upstream-command.ts';
import { auditFields, logFields } from './who.ts';

/** What every command's outcome adds up to, for `query-proxy`. */
export interface CommandCounts {
  /** Commands refused by a policy. */
  refused: number;
  /** Commands refused as too large for the endpoint or for QEMU. */
  tooLarge: number;
  /** Error replies clients got for commands QEMU answered (those replaced for being too large included). */
  qemuErrors: number;
  /** Error replies to qmp-mux's own commands. */
  ownErrors: number;
  /** Replies from QEMU longer than qmp-mux passes on (their clients got an error instead). */
  tooLargeReplies: number;
  /** Commands refused, or not run, because of another client's lock (lock requests refused so included). */
  locked: number;
}

/** A command as it was read from its client, for the report. */
export interface ReadCommand {
  readonly name: string;
  readonly idText: string | undefined;
  readonly args: JsonObject | undefined;
  /** When qmp-mux read it, ms (`performance.now()`). */
  readonly receivedAt: number;
}

/**
 * Refusals of one client logged each, the first ones; the rest are counted
 * (and said once), since a client can send refused commands as fast as it
 * can write and the log is the operator's, not the client's.
 */
export const REFUSALS_LOGGED = 10;

/**
 * The one place a command's outcome is reported, however it ends: refused
 * by a policy, answered by qmp-mux itself, refused as too large, or
 * answered by QEMU. Each is counted, measured in the metrics of the
 * client's endpoint, recorded in the audit log where it wants it, and
 * logged where an operator should hear of it (once per client for what a
 * client can repeat at will).
 */
export class CommandReport {
  readonly counts: CommandCounts = { refused: 0, tooLarge: 0, qemuErrors: 0, ownErrors: 0, tooLargeReplies: 0, locked: 0 };

  constructor(
    private readonly log: Logger,
    private readonly audit: AuditLog | undefined,
  ) {}

  /** Whether the audit log would record `name` (its arguments must then be kept until it is answered). */
  recordsCommand(name: string): boolean {
    return this.audit?.recordsCommand(name) ?? false;
  }

  /** The endpoint's policy refused it. */
  refused(from: Requester, command: ReadCommand, why: Refusal): void {
    this.counts.refused++;
    from.metrics.refused(command.name);
    from.identityMetrics?.commandDone('refused');
    this.audit?.refusal(auditEntry(from, command));
    const n = ++from.said.refusals;
    if (n > REFUSALS_LOGGED + 1) return;
    const action = why.kind === 'action' ? why.action : undefined;
    const fields = { ...logFields(from), command: command.name, action, why: why.kind };
    if (n <= REFUSALS_LOGGED) this.log.warn('refused a command', fields);
    else this.log.warn(`refused a command; this client's further refusals are counted, not logged (said after ${REFUSALS_LOGGED} refusals; its disconnection says how many)`, fields);
  }

  /** It was larger than the endpoint or QEMU take: `why` says which. */
  tooLarge(from: Requester, command: ReadCommand, why: string): void {
    this.counts.tooLarge++;
    if (!from.said.tooLarge) {
      from.said.tooLarge = true;
      this.log.warn('refused a command too large (said once per client)', { ...logFields(from), command: command.name, why });
    }
    this.record(from, command, 'GenericError', undefined);
  }

  /** qmp-mux answered it itself: `outcome` is `return`, the error class, or `locked` (a lock request refused). */
  answeredHere(from: Requester, command: ReadCommand, outcome: string): void {
    if (outcome === 'locked') this.counts.locked++;
    else if (outcome !== 'return') this.counts.ownErrors++;
    this.record(from, command, outcome, undefined);
  }

  /** Another client's lock held it back and it did not wait (or will not run): outcome `locked`. */
  locked(from: Requester, command: ReadCommand): void {
    this.counts.locked++;
    this.record(from, command, 'locked', undefined);
  }

  /** QEMU answered it (`reply` as QEMU sent it), after `qemuSeconds`. */
  answered(command: UpstreamCommand, reply: UpstreamMessage, qemuSeconds: number): void {
    if (reply.kind === 'error' || reply.tooLarge) this.counts.qemuErrors++;
    const { from, receivedAt } = command;
    if (reply.tooLarge) this.counts.tooLargeReplies++;
    if (!from || receivedAt === undefined) return;
    if (reply.tooLarge && !from.said.tooLargeReply) {
      from.said.tooLargeReply = true;
      this.log.warn("QEMU's reply was longer than qmp-mux passes on; the client gets an error instead (said once per client)", {
        ...logFields(from),
        command: command.name,
        bytes: reply.tooLarge.length,
        maxUpstreamMessage: reply.tooLarge.limit,
      });
    }
    const outcome = reply.tooLarge ? 'GenericError' : reply.kind === 'return' ? 'return' : errorClass(reply.bytes);
    this.record(from, { name: command.name, idText: command.idText, args: command.args, receivedAt }, outcome, qemuSeconds);
  }

  private record(from: Requester, command: ReadCommand, outcome: string, qemuSeconds: number | undefined): void {
    from.metrics.commandDone(command.name, outcome, (performance.now() - command.receivedAt) / 1000, qemuSeconds);
    from.identityMetrics?.commandDone(outcome);
    this.audit?.command({ ...auditEntry(from, command), outcome, qemuSeconds });
  }
}

function auditEntry(from: Requester, command: ReadCommand) {
  return {
    ...auditFields(from),
    command: command.name,
    idText: command.idText,
    arguments: command.args,
  };
}
