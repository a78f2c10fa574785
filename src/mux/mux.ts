import type { Socket } from 'node:net';
import type { Options } from '../config/options.ts';
import type { JsonValue } from '../json/value.ts';
import { writeQemu } from '../json/writer.ts';
import { Client, DISCONNECT_REASONS } from '../downstream/client.ts';
import { Endpoint } from '../downstream/endpoint.ts';
import type { Logger } from '../log.ts';
import { formatAddress } from '../net/address.ts';
import { descriptorLimit, descriptorsOpen } from '../net/descriptors.ts';
import type { InheritedSocket } from '../net/systemd.ts';
import { TickFlusher } from '../net/tick-writer.ts';
import { AuditLog } from '../ops/audit-log.ts';
import { EventJournal } from '../ops/event-journal.ts';
import { MuxMetrics, type EndpointMetrics } from '../ops/mux-metrics.ts';
import type { UpstreamMessage } from '../qmp/upstream-framer.ts';
import { UpstreamConnection, type Greeting, type UpstreamState } from '../upstream/connection.ts';
import type { UpstreamSource } from '../upstream/source.ts';
import { VERSION } from '../version.ts';
import { Dispatcher } from './dispatcher.ts';
import { EventFanOut } from './event-fanout.ts';
import { clientsValue, EXTENSION_COMMANDS, proxyValue, type ClientInfo, type MuxInfo, type MuxView } from './own-commands.ts';
import { ClientRegistry } from './registry.ts';
import { Router, type RouterCounters } from './router.ts';

/**
 * File descriptors kept free for what qmp-mux needs besides its clients
 * (QEMU, listening anew, files): a client that would leave fewer free is
 * refused.
 */
const DESCRIPTOR_RESERVE = 16;

/** How much of a message from QEMU goes into a log line. */
const EXCERPT = 200;
const excerpt = (bytes: Buffer): string => bytes.toString('utf8', 0, Math.min(bytes.length, EXCERPT));

/**
 * One qmp-mux: one upstream QEMU monitor, many client endpoints. Events go
 * to every negotiated client whose endpoint wants them, numbered and kept
 * in a journal; replies go back to whoever asked; each endpoint's policy
 * decides what reaches QEMU; commands are counted (and audited, if asked).
 * An instance holds everything it uses, so several can run in one process.
 */
export class Mux implements MuxView {
  private readonly flusher = new TickFlusher();
  private readonly registry = new ClientRegistry();
  private readonly dispatcher: Dispatcher;
  private readonly endpoints: Endpoint[];
  private readonly events: EventFanOut;
  private readonly journal: EventJournal;
  private readonly audit: AuditLog | undefined;
  /** qmp-mux's metrics, and each endpoint's share of them. */
  readonly metrics: MuxMetrics;
  private readonly endpointMetrics = new Map<Endpoint, EndpointMetrics>();
  private upstream: UpstreamConnection | undefined;
  private greeting: Greeting | undefined;
  private stopping = false;
  /** Start-up under way: a stop waits for it, so that nothing it starts is left running. */
  private starting: Promise<unknown> | undefined;
  private clientCounter = 0;
  private readonly startedAt = Date.now();
  private readonly routerCounters: RouterCounters = { refused: 0, tooLarge: 0 };
  private readonly counters = { qemuErrors: 0, closedSessionErrors: 0, replyMismatches: 0, disconnects: {} as Record<string, number> };
  private warnedSilentUpstream = false;
  private acceptFailing = false;
  private readonly descriptorLimit = descriptorLimit();
  private descriptorsAtFirstClient: number | undefined;
  /** Client connections open, closing ones included. */
  private connections = 0;

  constructor(
    private readonly options: Options,
    private readonly source: UpstreamSource,
    private readonly log: Logger,
    /** Sockets systemd passed, by the name of the endpoint each is for. */
    inherited: ReadonlyMap<string, InheritedSocket> = new Map(),
  ) {
    this.dispatcher = new Dispatcher(options.window);
    this.endpoints = options.endpoints.map((e) => new Endpoint(e, inherited.get(e.name)));
    this.events = new EventFanOut(this.endpoints, this.registry);
    this.journal = new EventJournal(options.journal);
    this.audit = options.audit && new AuditLog({ ...options.audit, logger: log });
    this.metrics = new MuxMetrics({
      version: VERSION,
      ownCommands: EXTENSION_COMMANDS,
      upstreamState: () => this.upstreamState,
      auditDropped: () => this.audit?.stats.dropped ?? 0,
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
    for (const endpoint of this.endpoints) {
      const probe = { clients: () => this.registry.count(endpoint), outputQueuedBytes: () => this.registry.bytesQueued(endpoint) };
      this.endpointMetrics.set(endpoint, this.metrics.endpoint(endpoint.name, probe));
    }
    try {
      for (const endpoint of this.endpoints) {
        await endpoint.listen(
          (socket) => this.accept(socket, endpoint),
          (err) => this.acceptFailed(endpoint, err.code ?? err.message),
        );
        this.log.info('listening', { endpoint: endpoint.name, address: formatAddress(endpoint.address), systemdFd: endpoint.inherited?.fd });
      }
      await this.source.start((socket) => this.attachUpstream(socket));
    } catch (e) {
      this.stopping = true;
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
    await Promise.all(this.endpoints.map((e) => e.close()));
    for (const client of this.registry) {
      if (client.state === 'waiting') client.end('stopping');
      else client.stopReading();
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.dispatcher.idle(), new Promise<void>((r) => (timer = setTimeout(r, this.options.timeouts.shutdownMs)))]);
    clearTimeout(timer);
    for (const client of this.registry) client.end('stopping');
    await this.source.stop((name) => this.dispatcher.call(name));
    this.upstream?.close('qmp-mux stopping');
    await this.audit?.close();
  }

  /** Reopens the audit log's file (after external rotation). */
  reopenAudit(): void {
    this.audit?.reopen();
  }

  /** Why QEMU cannot be asked anything now, or undefined when it can (`/readyz`). */
  notReady(): string | undefined {
    const state = this.upstreamState;
    return state === 'ready' ? undefined : `QEMU connection is ${state}`;
  }

  /** `query-proxy` and `query-clients` together, as JSON (`/status`). */
  status(): string {
    return writeQemu(new Map<string, JsonValue>([['proxy', proxyValue(this)], ['clients', clientsValue(this)]]));
  }

  /** Where its link to QEMU is. */
  get upstreamState(): UpstreamState {
    if (this.stopping) return 'stopped';
    return this.upstream && this.upstream.state !== 'closed' ? this.upstream.state : 'connecting';
  }

  // MuxView

  listClients(): ClientInfo[] {
    return [...this.registry].map((c) => ({
      client: c.number,
      endpoint: c.endpoint.name,
      peer: c.peer,
      connectedSince: c.connectedAt,
      negotiated: c.session?.state === 'command',
      commands: c.router?.commandsSent ?? 0,
      inFlight: c.session?.pending ?? 0,
      bytesQueued: c.bytesQueued,
      events: (c.session && this.registry.choiceOf(c.endpoint, c.session)?.patterns) ?? c.endpoint.options.events,
    }));
  }

  describe(): MuxInfo {
    const { refused, tooLarge } = this.routerCounters;
    let errors = this.counters.qemuErrors + this.counters.closedSessionErrors + refused + tooLarge;
    for (const c of this.registry) errors += c.session?.errors ?? 0;
    return {
      version: VERSION,
      uptimeSeconds: (Date.now() - this.startedAt) / 1000,
      upstreamState: this.upstreamState,
      upstreamMode: this.source.mode,
      qemu: this.greeting?.versionValue,
      clients: this.registry.size,
      lastEvent: this.journal.last,
      counters: {
        commands: this.dispatcher.stats.sent,
        // Every event is numbered, so the newest number is how many there were.
        events: this.journal.last,
        errors,
        refused,
        tooLarge,
        replyMismatches: this.counters.replyMismatches,
        disconnects: { ...this.counters.disconnects },
      },
      audit: this.audit?.stats,
    };
  }

  // Clients

  private accept(socket: Socket, endpoint: Endpoint): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    this.connections++;
    const metrics = this.endpointMetrics.get(endpoint)!;
    metrics.connected();
    const spare = this.spareDescriptors();
    if (spare >= 0 && this.acceptFailing) {
      this.acceptFailing = false;
      this.log.info('accepting clients again', { endpoint: endpoint.name });
    }
    const number = ++this.clientCounter;
    const peer = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : `local#${number}`;
    const client = new Client({
      socket,
      endpoint,
      number,
      peer,
      log: this.log,
      flusher: this.flusher,
      metrics,
      lingerMs: this.options.timeouts.closeMs,
      onClosed: (c) => this.gone(c),
    });
    this.log.info('client connected', { endpoint: endpoint.name, client: peer });
    if (spare < 0) {
      this.acceptFailed(endpoint, `${descriptorsOpen()} file descriptors open, ${this.descriptorLimit} allowed`);
      client.refuse('no-descriptors', 'qmp-mux has no file descriptors to spare; try again later');
      return;
    }
    const max = endpoint.options.maxClients;
    if (this.registry.count(endpoint) >= max) {
      // Not a client of the endpoint: it holds no place there while its connection closes.
      client.refuse('too-many-clients', `Too many clients on endpoint '${endpoint.name}' (at most ${max})`);
      return;
    }
    this.registry.add(client);
    if (this.greeting) client.greet(this.greeting, this.routerFor(client));
    else client.awaitGreeting(this.options.timeouts.clientGreetingMs);
  }

  /**
   * File descriptors left free beyond the reserve, the connection just
   * accepted counted; negative when it eats into the reserve. Counted only
   * when clients could be using a good part of them (the count reads
   * /proc): what was open at the first client, and clients since, counted
   * twice for what else may have opened meanwhile.
   */
  private spareDescriptors(): number {
    const room = this.descriptorLimit - DESCRIPTOR_RESERVE;
    this.descriptorsAtFirstClient ??= descriptorsOpen();
    if ((this.descriptorsAtFirstClient + this.connections) * 2 < room) return Infinity;
    return room - descriptorsOpen();
  }

  /** Clients cannot be accepted (no file descriptors to spare): said once, until one is again. */
  private acceptFailed(endpoint: Endpoint, why: string): void {
    if (this.acceptFailing) return;
    this.acceptFailing = true;
    this.log.error('cannot accept clients', { endpoint: endpoint.name, why });
  }

  private routerFor(client: Client): Router {
    return new Router({
      endpoint: client.endpoint,
      client,
      dispatcher: this.dispatcher,
      registry: this.registry,
      view: this,
      journal: this.journal,
      metrics: this.endpointMetrics.get(client.endpoint)!,
      audit: this.audit,
      counters: this.routerCounters,
      log: this.log,
    });
  }

  private gone(client: Client): void {
    this.connections--;
    this.registry.remove(client);
    this.counters.closedSessionErrors += client.session?.errors ?? 0;
    this.counters.disconnects[client.reason] = (this.counters.disconnects[client.reason] ?? 0) + 1;
    this.endpointMetrics.get(client.endpoint)!.ended(client.reason);
    const reason = DISCONNECT_REASONS[client.reason] + (client.detail ? ` (${client.detail})` : '');
    this.log.info('client disconnected', { endpoint: client.endpoint.name, client: client.peer, reason });
  }

  // QEMU

  private attachUpstream(socket: Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const connection = new UpstreamConnection(
      socket,
      {
        ready: (greeting) => this.upstreamReady(connection, greeting),
        message: (m) => this.upstreamMessage(connection, m),
        read: (bytes) => {
          this.metrics.upstreamBytesIn(bytes);
          this.events.flush();
        },
        anomaly: (what, bytes) => this.log.debug(`QEMU sent ${what}`, { bytes: excerpt(bytes) }),
        closed: (reason) => this.upstreamClosed(connection, reason),
      },
      { maxMessageSize: this.options.maxUpstreamMessage, greetingTimeoutMs: this.options.timeouts.upstreamGreetingMs, flusher: this.flusher },
    );
    this.upstream = connection;
  }

  private upstreamReady(connection: UpstreamConnection, greeting: Greeting): void {
    this.greeting = greeting;
    this.warnedSilentUpstream = false;
    this.source.ready();
    this.metrics.upstreamReady();
    this.log.info('QEMU connected', { version: greeting.version, capabilities: greeting.capabilities.join(',') });
    this.dispatcher.attach((bytes) => {
      if (this.log.tracing) this.log.trace('to-qemu', { peer: 'qemu' }, bytes);
      this.metrics.upstreamBytesOut(bytes.length);
      connection.send(bytes);
    });
    for (const client of this.registry) {
      if (client.state === 'waiting') client.greet(greeting, this.routerFor(client));
    }
  }

  private upstreamMessage(connection: UpstreamConnection, m: UpstreamMessage): void {
    if (this.log.tracing) this.log.trace('from-qemu', { peer: 'qemu' }, m.bytes);
    // Events that came before this message go out before it.
    if (m.kind !== 'event') this.events.flush();
    switch (m.kind) {
      case 'event': {
        const name = m.event ?? '';
        const seq = this.journal.append(name, m.bytes);
        this.metrics.event(name);
        this.audit?.event({ name, seq, bytes: m.bytes });
        this.events.add(name, m.bytes, seq);
        return;
      }
      case 'return':
      case 'error': {
        if (m.kind === 'error') this.counters.qemuErrors++;
        const problem = this.dispatcher.reply(m);
        if (problem !== undefined) this.lostTrack(connection, problem, m);
        return;
      }
      case 'greeting':
      case 'unknown':
        this.log.warn('unexpected message from QEMU', { bytes: excerpt(m.bytes) });
        return;
    }
  }

  /**
   * QEMU sent a reply that cannot answer anything in flight: its view of
   * the conversation and qmp-mux's differ, and any reply may now be someone
   * else's. The connection is dropped and made again; clients whose
   * commands were in flight are ended (their replies cannot be told apart),
   * the others carry on.
   */
  private lostTrack(connection: UpstreamConnection, problem: string, m: UpstreamMessage): void {
    this.counters.replyMismatches++;
    this.log.error("QEMU's replies no longer match the commands in flight; reconnecting to QEMU", { why: problem, bytes: excerpt(m.bytes) });
    this.upstream = undefined;
    this.greeting = undefined;
    this.metrics.upstreamLost();
    connection.close('replies stopped matching the commands in flight');
    this.dispatcher.detach();
    if (!this.stopping) this.source.lost();
  }

  private upstreamClosed(connection: UpstreamConnection, reason: string): void {
    if (this.upstream !== connection) return;
    this.upstream = undefined;
    this.metrics.upstreamLost();
    const wasReady = this.greeting !== undefined;
    this.greeting = undefined;
    if (this.stopping) {
      this.dispatcher.detach();
      return;
    }
    if (wasReady) {
      this.log.warn('QEMU disconnected', { reason });
      // As with QEMU itself, clients see everything sent before the break, then EOF.
      for (const client of this.registry) {
        if (client.state !== 'waiting') client.end('qemu-gone');
      }
    } else if (!this.warnedSilentUpstream) {
      this.warnedSilentUpstream = true;
      this.log.warn('QEMU connection failed before negotiation, retrying', { reason });
    }
    this.dispatcher.detach();
    this.source.lost();
  }
}
