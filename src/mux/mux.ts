import type { Options } from '../config/options.ts';
import { ConfigError } from '../errors.ts';
import type { ClientConnection } from '../downstream/client-connection.ts';
import { Endpoint } from '../downstream/endpoint.ts';
import { EventFanOut } from '../events/fan-out.ts';
import { EventJournal } from '../events/journal.ts';
import type { JsonValue } from '../json/value.ts';
import { writeQemu } from '../json/writer.ts';
import type { Logger } from '../log.ts';
import { formatAddress } from '../net/address.ts';
import { SocketFlusher } from '../net/socket-writer.ts';
import type { InheritedSocket } from '../net/systemd.ts';
import { AuditLog } from '../ops/audit-log.ts';
import { MuxMetrics, type EndpointMetrics } from '../ops/mux-metrics.ts';
import { OWN_COMMANDS } from '../qmp/extensions.ts';
import { CommandEncoder } from '../qmp/wire.ts';
import type { UpstreamState } from '../upstream/connection.ts';
import type { UpstreamSource } from '../upstream/source.ts';
import { present } from '../util/assert.ts';
import { VERSION } from '../version.ts';
import { CommandReport } from './command-report.ts';
import { CommandRouter } from './command-router.ts';
import { Dispatcher } from './dispatcher.ts';
import { ClientIntake } from './intake.ts';
import { reportedLock } from './lock-report.ts';
import type { MonitorLock } from './monitor-lock.ts';
import { clientInfo, clientsValue, proxyValue, type ClientInfo, type MuxInfo, type MuxView } from './own-commands.ts';
import { ClientRegistry } from './registry.ts';
import { reassign } from './reassign.ts';
import { planReload, type ReloadPlan } from './reload.ts';
import { StallWatch } from './stall-watch.ts';
import { UpstreamLink } from './upstream-link.ts';

/**
 * One qmp-mux: one upstream QEMU monitor, many client endpoints. Events go
 * to every negotiated client whose endpoint wants them, numbered and kept
 * in a journal; replies go back to whoever asked; each endpoint's policy
 * decides what reaches QEMU; commands are counted (and audited, if asked).
 * An instance holds everything it uses, so several can run in one process.
 */
export class Mux implements MuxView {
  /** qmp-mux's metrics, and each endpoint's share of them. */
  readonly metrics: MuxMetrics;
  /** The audit log, if one is kept (SIGUSR1 reopens it). */
  readonly audit: AuditLog | undefined;
  /** Resolves the first time QEMU is connected and negotiated: qmp-mux is then ready (systemd's READY=1). */
  readonly firstReady: Promise<void>;
  private markReady: () => void = () => undefined;
  private readonly flusher = new SocketFlusher();
  private readonly registry = new ClientRegistry();
  private readonly encoder = new CommandEncoder();
  private readonly report: CommandReport;
  private readonly dispatcher: Dispatcher;
  private readonly endpoints: Endpoint[];
  private readonly fanOut = new EventFanOut();
  private readonly journal: EventJournal;
  private readonly link: UpstreamLink;
  private readonly intake: ClientIntake;
  /** Each endpoint's share of the metrics, by name. */
  private readonly endpointMetrics = new Map<string, EndpointMetrics>();
  /** The monitor's lock: one client at a time may keep others' commands out. */
  private readonly lock: MonitorLock;
  private readonly stallWatch: StallWatch;
  private stallTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  /** Start-up under way: a stop waits for it, so that nothing it starts is left running. */
  private starting: Promise<unknown> | undefined;
  private readonly startedAt = Date.now();
  /** Errors sessions answered themselves, of clients gone; and disconnects, by reason. */
  private readonly closed = { sessionErrors: 0, disconnects: {} as Record<string, number> };

  constructor(
    private readonly options: Options,
    private readonly source: UpstreamSource,
    private readonly log: Logger,
    /** Sockets systemd passed, by the name of the endpoint each is for. */
    inherited: ReadonlyMap<string, InheritedSocket> = new Map(),
  ) {
    this.firstReady = new Promise((resolve) => (this.markReady = resolve));
    this.endpoints = options.endpoints.map((e) => new Endpoint(e, inherited.get(e.name)));
    this.journal = new EventJournal(options.journal);
    this.audit = options.audit && new AuditLog({ ...options.audit, logger: log });
    this.report = new CommandReport(log, this.audit);
    this.dispatcher = new Dispatcher({
      window: options.window,
      windowBytes: options.windowBytes,
      totalInputBytes: options.totalInputBytes,
      encoder: this.encoder,
      answered: (command, reply, seconds) => this.report.answered(command, reply, seconds),
    });
    this.metrics = new MuxMetrics({
      version: VERSION,
      ownCommands: OWN_COMMANDS,
      upstreamState: () => this.upstreamState,
      auditDropped: () => this.audit?.stats.dropped ?? 0,
      oldestCommandAge: () => this.dispatcher.oldestCommandMs / 1000,
      queuedInputBytes: () => this.dispatcher.stats.queuedBytes,
    });
    this.lock = reportedLock(log, this.audit, this.metrics.registry);
    this.link = new UpstreamLink({
      source,
      dispatcher: this.dispatcher,
      fanOut: this.fanOut,
      journal: this.journal,
      audit: this.audit,
      metrics: this.metrics,
      log,
      flusher: this.flusher,
      settings: options,
      ready: (greeting) => {
        this.markReady();
        for (const client of this.registry) if (client.state === 'waiting') client.greet(greeting, this.routeFor(client));
      },
      // As with QEMU itself, clients see everything sent before the break, then EOF.
      gone: () => {
        this.lock.reset('qemu-gone');
        for (const client of this.registry) if (client.state !== 'waiting') client.end('qemu-gone');
      },
    });
    this.intake = new ClientIntake({
      registry: this.registry,
      log,
      flusher: this.flusher,
      timeouts: options.timeouts,
      metricsOf: (endpoint) => this.metricsOf(endpoint),
      greeting: () => this.link.greeting,
      routeFor: (client) => this.routeFor(client),
      onNegotiated: (client) => this.fanOut.subscribe(client.access, present(client.session, 'the session of a negotiated client')),
      onClosed: (client) => this.closedClient(client),
    });
    this.stallWatch = new StallWatch(options.timeouts.stallMs, {
      stalled: (waitedMs) => {
        this.metrics.upstreamStalled();
        log.warn('QEMU has stopped answering: a command has waited past the stall threshold', { waitedMs: Math.round(waitedMs), stallMs: options.timeouts.stallMs });
      },
      recovered: (stalledMs) => log.info(this.link.greeting ? 'QEMU is answering again' : 'QEMU stall over: the connection to QEMU is gone', { stalledMs: Math.round(stalledMs) }),
    });
  }

  /**
   * Prepares the upstream source, listens on every endpoint, then starts
   * looking for QEMU. Resolves with the endpoints, bound, once the source
   * is under way; on failure, undoes what it did and rejects.
   */
  start(): Promise<readonly Endpoint[]> {
    const started = this.startUp();
    this.starting = started.catch(() => undefined);
    return started;
  }

  private async startUp(): Promise<readonly Endpoint[]> {
    await this.source.open();
    this.endpoints.push(...this.source.endpoints);
    try {
      for (const endpoint of this.endpoints) await this.listenOn(endpoint);
      await this.source.start((socket) => this.link.attach(socket));
      // A stall is told within a quarter of the threshold (at most a second).
      const every = Math.min(1000, Math.max(10, this.options.timeouts.stallMs / 4));
      this.stallTimer = setInterval(() => this.stallWatch.check(this.dispatcher.oldestSentAt, performance.now()), every);
      this.stallTimer.unref();
    } catch (e) {
      this.stopping = true;
      this.intake.stop();
      this.link.stop();
      await Promise.all(this.endpoints.map((ep) => ep.close()));
      await this.source.stop(() => Promise.resolve(undefined));
      throw e;
    }
    return this.endpoints;
  }

  /**
   * Stops: no new clients, no more input; replies already owed go out
   * (for at most the shutdown timeout); then connections close, a QEMU
   * qmp-mux started is dealt with as configured, socket files are removed.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    await this.starting;
    if (this.stopping) return;
    this.stopping = true;
    this.intake.stop();
    this.link.stop();
    clearInterval(this.stallTimer);
    await Promise.all(this.endpoints.map((e) => e.close()));
    for (const client of this.registry) {
      if (client.state === 'waiting') client.end('stopping');
      else client.stopReading();
    }
    // Commands waiting for a lock are answered that they will not run; those already on their way finish.
    this.lock.reset('stopping');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.dispatcher.idle(), new Promise<void>((r) => (timer = setTimeout(r, this.options.timeouts.shutdownMs)))]);
    clearTimeout(timer);
    for (const client of this.registry) client.end('stopping');
    // Every client's end is logged before the stop is over (within closeMs: a peer that keeps its end open is cut off).
    const clientsClosed = this.intake.allClosed();
    await this.source.stop((name) => this.dispatcher.call(name));
    this.link.close();
    await this.audit?.close();
    await clientsClosed;
  }

  /**
   * Runs with `next` from now on, without dropping a client: new endpoints
   * listen, removed ones close (their clients with them), changed policies,
   * identities and limits hold from each client's next command (a client
   * whose certificate no identity names any more is closed), TLS files
   * are read again for the connections to come. Throws a ConfigError,
   * changing nothing, for what only a restart can change, or a TlsError for
   * a TLS file that cannot be used; rejects if a new address cannot be
   * listened on (what it did is undone). Resolves with what changed.
   */
  async reload(next: Options): Promise<ReloadPlan> {
    if (this.stopping) throw new ConfigError('qmp-mux is stopping');
    const plan = planReload(this.options, next);
    // Every TLS file is read before anything changes.
    const renewals = [...next.endpoints.map((e) => this.endpoints.find((o) => o.name === e.name)?.renewCredentials(e)), this.source.renewCredentials?.()];
    const added: Endpoint[] = [];
    try {
      for (const e of plan.added) {
        const endpoint = new Endpoint(e);
        await this.listenOn(endpoint);
        added.push(endpoint);
      }
      for (const e of plan.changed) await this.endpointNamed(e.name).update(e);
    } catch (err) {
      await Promise.all(added.map((e) => e.close()));
      throw err;
    }
    this.endpoints.push(...added);
    for (const name of plan.removed) {
      const endpoint = this.endpointNamed(name);
      this.endpoints.splice(this.endpoints.indexOf(endpoint), 1);
      await endpoint.close();
      for (const client of this.registry) if (client.endpoint === endpoint) client.end('endpoint-removed');
    }
    for (const endpoint of this.endpoints) await endpoint.restoreSocketFile(this.log);
    for (const client of this.registry) if (plan.changed.some((e) => e.name === client.endpoint.name)) reassign(client, this.fanOut);
    for (const renew of renewals) renew?.();
    Object.assign(this.options, { endpoints: next.endpoints, window: next.window, windowBytes: next.windowBytes, totalInputBytes: next.totalInputBytes, maxUpstreamMessage: next.maxUpstreamMessage });
    Object.assign(this.options.timeouts, next.timeouts);
    this.dispatcher.setLimits(next);
    this.lock.roomMade();
    this.stallWatch.thresholdMs = next.timeouts.stallMs;
    this.log.setLevel(next.log.level);
    return plan;
  }

  /** Why QEMU cannot be asked anything now, or undefined when it can (`/readyz`). */
  notReady(): string | undefined {
    const state = this.upstreamState;
    if (state !== 'ready') return `QEMU connection is ${state}`;
    if (this.stallWatch.isStalled(this.dispatcher.oldestSentAt, performance.now())) return `QEMU has not answered a command for ${Math.round(this.dispatcher.oldestCommandMs)} ms`;
    return undefined;
  }

  /** `query-proxy` and `query-clients` together, as JSON (`/status`). */
  status(): string {
    return writeQemu(new Map<string, JsonValue>([['proxy', proxyValue(this)], ['clients', clientsValue(this)]]));
  }

  /** Where its link to QEMU is. */
  get upstreamState(): UpstreamState {
    return this.stopping ? 'stopped' : this.link.state;
  }

  // MuxView

  listClients(): ClientInfo[] {
    return [...this.registry].map((c) => ({ ...clientInfo(c, c.session && this.fanOut.choiceOf(c.access, c.session)?.patterns), ...this.lock.stateOf(c.number) }));
  }

  describe(): MuxInfo {
    const { refused, tooLarge, qemuErrors, ownErrors, locked } = this.report.counts;
    let errors = qemuErrors + ownErrors + this.closed.sessionErrors + refused + tooLarge + locked;
    for (const c of this.registry) errors += c.session?.errors ?? 0;
    return {
      version: VERSION,
      uptimeSeconds: (Date.now() - this.startedAt) / 1000,
      upstreamState: this.upstreamState,
      upstreamMode: this.source.mode,
      qemu: this.link.greeting?.versionValue,
      clients: this.registry.size,
      lastEvent: this.journal.last,
      oldestCommandMs: this.dispatcher.oldestCommandMs,
      queuedBytes: this.dispatcher.stats.queuedBytes,
      counters: {
        commands: this.dispatcher.stats.sent,
        // Every event is numbered, so the newest number is how many there were.
        events: this.journal.last,
        errors,
        refused,
        tooLarge,
        locked,
        tooLargeFromQemu: this.link.counts.tooLargeFromQemu,
        replyMismatches: this.link.counts.replyMismatches,
        disconnects: { ...this.closed.disconnects },
      },
      audit: this.audit?.stats,
      lock: this.lock.snapshot(),
    };
  }

  private metricsOf(endpoint: Endpoint): EndpointMetrics {
    return present(this.endpointMetrics.get(endpoint.name), `the metrics of endpoint ${endpoint.name}`);
  }

  private endpointNamed(name: string): Endpoint {
    return present(this.endpoints.find((e) => e.name === name), `endpoint ${name}`);
  }

  /** Counts its clients in the metrics (an endpoint a reload brings back keeps its series) and listens. */
  private async listenOn(endpoint: Endpoint): Promise<void> {
    const probe = { clients: () => this.registry.count(endpoint), outputQueuedBytes: () => this.registry.bytesQueued(endpoint) };
    this.endpointMetrics.set(endpoint.name, this.metrics.endpoint(endpoint.name, probe));
    await endpoint.listen({
      connection: (socket) => this.intake.accept(socket, endpoint),
      error: (err) => this.intake.failed(endpoint, err.code ?? err.message),
      handshake: ({ peer, outcome, detail }) => {
        this.metrics.access.handshake(endpoint.name, outcome);
        if (outcome !== 'ok') this.log.warn('TLS handshake failed', { endpoint: endpoint.name, client: peer, why: outcome, detail });
      },
    });
    this.log.info('listening', { endpoint: endpoint.name, address: formatAddress(endpoint.address), tls: endpoint.options.tls !== undefined || undefined, systemdFd: endpoint.inherited?.fd });
  }

  private routeFor(client: ClientConnection): CommandRouter {
    const { endpoint } = client;
    return new CommandRouter({
      endpoint,
      client,
      metrics: this.metricsOf(endpoint),
      identityMetrics: ({ identity }) =>
        identity === undefined ? undefined : this.metrics.access.identity(endpoint.name, identity, () => this.registry.countIdentity(endpoint, identity)),
      dispatcher: this.dispatcher,
      encoder: this.encoder,
      report: this.report,
      lock: this.lock,
      own: {
        view: this,
        journal: this.journal,
        wantsEvent: (name) => client.access.wantsEvent(name),
        setEvents: (patterns) => this.fanOut.choose(client.access, present(client.session, 'the session of a greeted client'), patterns),
      },
    });
  }

  private closedClient(client: ClientConnection): void {
    this.registry.remove(client);
    if (client.session) this.fanOut.unsubscribe(client.access, client.session);
    this.closed.sessionErrors += client.session?.errors ?? 0;
    this.closed.disconnects[client.reason] = (this.closed.disconnects[client.reason] ?? 0) + 1;
    this.metricsOf(client.endpoint).ended(client.reason);
  }
}
