import type { HandshakeOutcome } from '../net/tls-server.ts';
import { QMP_ERROR_CLASSES } from '../qmp/error-classes.ts';
import { OTHER, type Counter, type CounterSeries, type Registry } from './prometheus.ts';

/** A command's outcome as `qmpmux_commands_total` labels it: `return`, a QMP error class, `refused`; else `other`. */
const OUTCOMES = new Set<string>(['return', ...QMP_ERROR_CLASSES, 'refused']);

/**
 * The metrics of TLS endpoints and of identities: handshakes by outcome,
 * and clients and commands by identity. Identities are the configuration's
 * names, never a certificate's (which any client of the CA chooses), so
 * the series are as many as the configuration makes them.
 */
export class AccessMetrics {
  private readonly handshakes: Counter;
  private readonly commands: Counter;
  /** Each identity's handle and probe, by endpoint and name. */
  private readonly identities = new Map<string, { readonly endpoint: string; readonly metrics: IdentityMetrics; clients: () => number }>();

  constructor(registry: Registry) {
    this.handshakes = registry.counter({
      name: 'qmpmux_tls_handshakes_total',
      help: 'TLS handshakes on endpoints, by endpoint and outcome ("ok", or why it failed: no-certificate, untrusted, expired, not-yet-valid, timeout, evicted, protocol, closed, other).',
      labelNames: ['endpoint', 'outcome'],
    });
    registry.collectedGauge({
      name: 'qmpmux_identity_clients',
      help: 'Clients connected, by endpoint and identity (the identity rule their certificate matched).',
      labelNames: ['endpoint', 'identity'],
      collect: (report) => this.identities.forEach((i) => report(i.clients(), i.endpoint, i.metrics.identity)),
    });
    this.commands = registry.counter({
      name: 'qmpmux_identity_commands_total',
      help: 'Commands answered, by endpoint, identity and outcome (as in qmpmux_commands_total).',
      labelNames: ['endpoint', 'identity', 'outcome'],
    });
  }

  /** A TLS handshake on `endpoint` ended. */
  handshake(endpoint: string, outcome: HandshakeOutcome): void {
    this.handshakes.labels(endpoint, outcome).inc();
  }

  /**
   * The handle an identity's commands are counted through; `clients` is
   * asked when scraped. An identity seen before (a reload kept it) goes on
   * with its series, and its new probe.
   */
  identity(endpoint: string, identity: string, clients: () => number): IdentityMetrics {
    const key = `${endpoint}\u0000${identity}`;
    const known = this.identities.get(key);
    if (known) {
      known.clients = clients;
      return known.metrics;
    }
    const metrics = new IdentityMetrics(this.commands, endpoint, identity);
    this.identities.set(key, { endpoint, metrics, clients });
    return metrics;
  }
}

/** One identity's share of the metrics. */
export class IdentityMetrics {
  private readonly series = new Map<string, CounterSeries>();

  /** @internal Made by AccessMetrics.identity. */
  constructor(
    private readonly commands: Counter,
    private readonly endpoint: string,
    readonly identity: string,
  ) {}

  /** A command of one of its clients was answered (`return`, the error class) or refused (`refused`). */
  commandDone(outcome: string): void {
    const label = OUTCOMES.has(outcome) ? outcome : OTHER;
    let series = this.series.get(label);
    if (!series) this.series.set(label, (series = this.commands.labels(this.endpoint, this.identity, label)));
    series.inc();
  }
}
