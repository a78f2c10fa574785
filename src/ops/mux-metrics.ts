import { QMP_ERROR_CLASSES } from '../qmp/error-classes.ts';
import { UPSTREAM_STATES, type UpstreamState } from '../upstream/connection.ts';
import { BoundedValues } from './bounded-values.ts';
import { OTHER, Registry, type Counter, type CounterSeries, type Histogram, type HistogramSeries } from './prometheus.ts';

/**
 * The `outcome` label of a command: `return`, the QMP error class (QEMU
 * 7.2's ErrorClass values), `refused` by the endpoint's policy, `locked`
 * (another client's lock held it back); any other error class counts as
 * `other`.
 */
const COMMAND_OUTCOMES = ['return', ...QMP_ERROR_CLASSES, 'refused', 'locked', OTHER] as const;
const OUTCOME_INDEX = new Map<string, number>(COMMAND_OUTCOMES.map((o, i) => [o, i]));
const OTHER_OUTCOME = COMMAND_OUTCOMES.indexOf(OTHER);
const REFUSED = COMMAND_OUTCOMES.indexOf('refused');

/** Latency buckets, seconds: from a quick query (~100 µs) to a long-running command. */
const LATENCY_BUCKETS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Command names counted by name (QEMU 7.2 has about 230); the rest count as `other`. */
export const MAX_COMMAND_NAMES = 1000;
/** Event names counted by name, first come (QEMU 7.2 has about 70); later ones count as `other`. */
export const MAX_EVENT_NAMES = 200;
/** Disconnect reasons counted by name per endpoint. */
const MAX_REASONS = 32;

export interface MuxMetricsOptions {
  /** qmp-mux's version, the label of `qmpmux_build_info`. */
  version: string;
  /** qmp-mux's own command names (`__org.qmp-mux_*`), always counted by name. */
  ownCommands: readonly string[];
  /** Monotonic clock in milliseconds; `performance.now` by default. */
  now?: () => number;
  /** Where the link to QEMU is, asked when scraped. */
  upstreamState(): UpstreamState;
  /** Audit entries dropped so far (it only grows), asked when scraped. */
  auditDropped(): number;
  /** How long the oldest command QEMU has not answered has waited, seconds (0 when none), asked when scraped. */
  oldestCommandAge(): number;
  /** Bytes of client commands waiting in qmp-mux for their turn to QEMU, asked when scraped. */
  queuedInputBytes(): number;
}

/** What an endpoint reports when scraped. */
export interface EndpointProbe {
  /** Clients connected to it now. */
  clients(): number;
  /** Bytes written to its clients and not yet taken by them. */
  outputQueuedBytes(): number;
}

/** The series of one command name, created on first use. */
class CommandSeries {
  duration: HistogramSeries | undefined;
  qemuDuration: HistogramSeries | undefined;
  /** `qmpmux_commands_total` series, by endpoint index, then by outcome index. */
  readonly counts: (CounterSeries | undefined)[][] = [];
  constructor(readonly name: string) {}
}

/** What the endpoint handles share. */
interface Shared {
  readonly accepted: Counter;
  readonly ended: Counter;
  readonly commands: Counter;
  readonly refused: Counter;
  readonly received: Counter;
  readonly sent: Counter;
  readonly duration: Histogram;
  readonly qemuDuration: Histogram;
  /** The series of a command name: its own, or `other`'s. */
  command(name: string): CommandSeries;
  /** A command name QEMU knows: counted by name from now on (up to the cap). */
  admit(name: string): void;
}

/**
 * qmp-mux's own metrics. Each call the proxy makes on its data path is a
 * few field updates and at most two map lookups; values that change by
 * themselves (clients, queued output, time connected) are asked for when
 * scraped.
 */
export class MuxMetrics {
  /** Where every metric is registered (the lock's too). */
  readonly registry = new Registry();
  private readonly now: () => number;
  private readonly ownCommands: readonly string[];
  /** Each endpoint's probe and handle, by name. */
  private readonly endpoints = new Map<string, EndpointProbe>();
  private readonly handles = new Map<string, EndpointMetrics>();
  private readonly commands: BoundedValues<CommandSeries>;
  private readonly events: BoundedValues<CounterSeries>;
  private connectedAt: number | undefined;
  private everReady = false;
  private readonly reconnects: CounterSeries;
  private readonly upstreamReceived: CounterSeries;
  private readonly upstreamSent: CounterSeries;
  private readonly stalls: CounterSeries;
  private readonly tooLarge: Counter;
  private readonly shared: Shared;

  constructor(options: MuxMetricsOptions) {
    this.now = options.now ?? (() => performance.now());
    this.ownCommands = options.ownCommands;
    const r = this.registry;
    r.gauge({ name: 'qmpmux_build_info', help: 'Always 1; the label is the version of qmp-mux.', labelNames: ['version'] }).labels(options.version).set(1);
    r.collectedGauge({
      name: 'qmpmux_clients',
      help: 'Clients connected, by endpoint.',
      labelNames: ['endpoint'],
      collect: (report) => this.endpoints.forEach((probe, name) => report(probe.clients(), name)),
    });
    const endpoint = ['endpoint'];
    this.shared = {
      accepted: r.counter({ name: 'qmpmux_connections_accepted_total', help: 'Client connections accepted, by endpoint.', labelNames: endpoint }),
      ended: r.counter({
        name: 'qmpmux_connections_ended_total',
        help: 'Client connections ended, by endpoint and reason (as in query-proxy\'s disconnects).',
        labelNames: ['endpoint', 'reason'],
      }),
      commands: r.counter({
        name: 'qmpmux_commands_total',
        help: 'Commands answered, by endpoint, command name (names QEMU does not list count as "other") and outcome ("return", the QMP error class, or "refused").',
        labelNames: ['endpoint', 'command', 'outcome'],
        maxSeries: 10_000,
      }),
      duration: r.histogram({
        name: 'qmpmux_command_duration_seconds',
        help: 'Time from reading a command from its client to writing its reply, by command name.',
        labelNames: ['command'],
        buckets: LATENCY_BUCKETS,
        maxSeries: MAX_COMMAND_NAMES + 1,
      }),
      qemuDuration: r.histogram({
        name: 'qmpmux_qemu_command_duration_seconds',
        help: 'Time from sending a command to QEMU to reading its reply, by command name.',
        labelNames: ['command'],
        buckets: LATENCY_BUCKETS,
        maxSeries: MAX_COMMAND_NAMES + 1,
      }),
      refused: r.counter({ name: 'qmpmux_commands_refused_total', help: 'Commands refused by the endpoint\'s policy, by endpoint.', labelNames: endpoint }),
      received: r.counter({ name: 'qmpmux_client_received_bytes_total', help: 'Bytes read from clients, by endpoint.', labelNames: endpoint }),
      sent: r.counter({ name: 'qmpmux_client_sent_bytes_total', help: 'Bytes written to clients, by endpoint.', labelNames: endpoint }),
      command: (name) => this.commands.get(name),
      admit: (name) => this.commands.admit(name),
    };
    r.collectedGauge({
      name: 'qmpmux_client_output_queued_bytes',
      help: 'Bytes written to clients and not yet taken by them, by endpoint.',
      labelNames: endpoint,
      collect: (report) => this.endpoints.forEach((probe, name) => report(probe.outputQueuedBytes(), name)),
    });
    const events = r.counter({ name: 'qmpmux_events_total', help: 'Events from QEMU, by name (counted once, however many clients get them).', labelNames: ['event'] });
    this.events = new BoundedValues((name) => events.labels(name), { cap: MAX_EVENT_NAMES });
    this.upstreamReceived = r.counter({ name: 'qmpmux_upstream_received_bytes_total', help: 'Bytes read from QEMU.' }).labels();
    this.upstreamSent = r.counter({ name: 'qmpmux_upstream_sent_bytes_total', help: 'Bytes written to QEMU.' }).labels();
    r.collectedGauge({
      name: 'qmpmux_upstream_state',
      help: 'The state of the link to QEMU: 1 for the current state, 0 for the others.',
      labelNames: ['state'],
      collect: (report) => {
        const now = options.upstreamState();
        for (const state of UPSTREAM_STATES) report(state === now ? 1 : 0, state);
      },
    });
    this.reconnects = r.counter({ name: 'qmpmux_upstream_reconnects_total', help: 'Connections to QEMU negotiated after the first.' }).labels();
    r.collectedGauge({
      name: 'qmpmux_upstream_oldest_command_age_seconds',
      help: 'How long the oldest command QEMU has not answered has waited (0 when none).',
      collect: (report) => report(options.oldestCommandAge()),
    });
    this.stalls = r.counter({ name: 'qmpmux_upstream_stalls_total', help: 'Times QEMU left a command unanswered longer than the stall threshold.' }).labels();
    this.tooLarge = r.counter({
      name: 'qmpmux_upstream_too_large_total',
      help: 'Messages from QEMU longer than maxUpstreamMessage, by kind: a reply (its client got an error instead), an event (dropped), other.',
      labelNames: ['kind'],
    });
    r.collectedGauge({
      name: 'qmpmux_queued_input_bytes',
      help: 'Bytes of client commands waiting in qmp-mux for their turn to QEMU.',
      collect: (report) => report(options.queuedInputBytes()),
    });
    r.collectedGauge({
      name: 'qmpmux_upstream_connected_seconds',
      help: 'Seconds since the current connection to QEMU was negotiated (absent while there is none).',
      collect: (report) => {
        if (this.connectedAt !== undefined) report((this.now() - this.connectedAt) / 1000);
      },
    });
    r.collectedCounter({
      name: 'qmpmux_audit_entries_dropped_total',
      help: 'Audit entries dropped because the audit log could not keep up.',
      collect: (report) => report(options.auditDropped()),
    });
    this.commands = new BoundedValues((name) => new CommandSeries(name), { cap: MAX_COMMAND_NAMES, allowed: this.ownCommands });
  }

  /**
   * The handle an endpoint's data path reports through; `probe` is asked
   * when scraped. An endpoint of a name seen before (a reload brought it
   * back) gets its old handle, its series going on, with its new probe.
   */
  endpoint(name: string, probe: EndpointProbe): EndpointMetrics {
    this.endpoints.set(name, probe);
    let metrics = this.handles.get(name);
    if (!metrics) this.handles.set(name, (metrics = new EndpointMetrics(this.shared, this.handles.size, name)));
    return metrics;
  }

  /** An event from QEMU. */
  event(name: string): void {
    this.events.get(name).inc();
  }

  upstreamBytesIn(n: number): void {
    this.upstreamReceived.inc(n);
  }

  upstreamBytesOut(n: number): void {
    this.upstreamSent.inc(n);
  }

  /** A connection to QEMU is negotiated: the clock of `qmpmux_upstream_connected_seconds` starts; after the first, a reconnect. */
  upstreamReady(): void {
    this.connectedAt = this.now();
    if (this.everReady) this.reconnects.inc();
    this.everReady = true;
  }

  /** QEMU left a command unanswered longer than the stall threshold. */
  upstreamStalled(): void {
    this.stalls.inc();
  }

  /** QEMU sent a message longer than qmp-mux passes on. */
  upstreamTooLarge(kind: 'reply' | 'event' | 'other'): void {
    this.tooLarge.labels(kind).inc();
  }

  /** The connection to QEMU is gone. */
  upstreamLost(): void {
    this.connectedAt = undefined;
  }

  /** The exposition, for `GET /metrics`. */
  render(): string {
    return this.registry.render();
  }
}

/** One endpoint's metrics; every method is O(1) and, once a series exists, allocates nothing. */
export class EndpointMetrics {
  private readonly accepted: CounterSeries;
  private readonly refusals: CounterSeries;
  private readonly received: CounterSeries;
  private readonly sent: CounterSeries;
  private readonly reasons: BoundedValues<CounterSeries>;

  /** @internal Made by MuxMetrics.endpoint. */
  constructor(
    private readonly shared: Shared,
    private readonly index: number,
    readonly name: string,
  ) {
    this.accepted = shared.accepted.labels(name);
    this.refusals = shared.refused.labels(name);
    this.received = shared.received.labels(name);
    this.sent = shared.sent.labels(name);
    this.reasons = new BoundedValues((reason) => shared.ended.labels(name, reason), { cap: MAX_REASONS });
  }

  /** A client connected (counted even if it is then turned away). */
  connected(): void {
    this.accepted.inc();
  }

  /** A client connection ended; `reason` is one of query-proxy's disconnect reasons. */
  ended(reason: string): void {
    this.reasons.get(reason).inc();
  }

  /**
   * A command was answered. `outcome`: `return` or the error class.
   * `totalSeconds`: from reading it to writing its reply; `qemuSeconds`:
   * from sending it to QEMU to reading QEMU's reply, undefined when QEMU
   * did not answer it (qmp-mux did). A name QEMU answered with anything but
   * CommandNotFound is one it has, and is counted by name from then on: a
   * client making names up cannot add series.
   */
  commandDone(command: string, outcome: string, totalSeconds: number, qemuSeconds?: number): void {
    if (qemuSeconds !== undefined && outcome !== 'CommandNotFound') this.shared.admit(command);
    const c = this.shared.command(command);
    this.count(c, OUTCOME_INDEX.get(outcome) ?? OTHER_OUTCOME);
    (c.duration ??= this.shared.duration.labels(c.name)).observe(totalSeconds);
    if (qemuSeconds !== undefined) (c.qemuDuration ??= this.shared.qemuDuration.labels(c.name)).observe(qemuSeconds);
  }

  /** The endpoint's policy refused a command. */
  refused(command: string): void {
    this.refusals.inc();
    this.count(this.shared.command(command), REFUSED);
  }

  /** Bytes read from one of its clients. */
  bytesIn(n: number): void {
    this.received.inc(n);
  }

  /** Bytes written to one of its clients. */
  bytesOut(n: number): void {
    this.sent.inc(n);
  }

  private count(c: CommandSeries, outcome: number): void {
    const row = (c.counts[this.index] ??= []);
    (row[outcome] ??= this.shared.commands.labels(this.name, c.name, COMMAND_OUTCOMES[outcome]!)).inc();
  }
}
