import type { Socket } from 'node:net';
import type { Options } from '../config/options.ts';
import { Client, DISCONNECT_REASONS, type ClientOwner } from '../downstream/client.ts';
import { Endpoint } from '../downstream/endpoint.ts';
import type { Logger } from '../log.ts';
import { formatAddress } from '../net/address.ts';
import type { InheritedSocket } from '../net/systemd.ts';
import { errorResponse } from '../qmp/messages.ts';
import type { Command, Session } from '../qmp/session.ts';
import type { UpstreamMessage } from '../qmp/upstream-framer.ts';
import { refusal } from '../policy/policy.ts';
import { EXTENSION_PREFIX } from '../policy/presets.ts';
import { UpstreamConnection, type Greeting } from '../upstream/connection.ts';
import type { UpstreamSource } from '../upstream/dialer.ts';
import { VERSION } from '../version.ts';
import { Dispatcher } from './dispatcher.ts';
import { filterCommandList, runExtension, type ClientInfo, type ProxyInfo, type ProxyView } from './extensions.ts';
import { EventFanOut } from './event-fanout.ts';

export type UpstreamState = 'connecting' | 'negotiating' | 'ready' | 'stopped';

/**
 * qmp-mux itself: one upstream QEMU monitor, many client endpoints. Events
 * go to every negotiated client whose endpoint wants them; replies go back
 * to whoever asked; each endpoint's policy decides what reaches QEMU.
 */
export class Proxy implements ClientOwner, ProxyView {
  private readonly dispatcher: Dispatcher;
  private readonly endpoints: Endpoint[];
  private readonly events: EventFanOut;
  private readonly clients = new Set<Client>();
  private upstream: UpstreamConnection | undefined;
  private greeting: Greeting | undefined;
  private upstreamState: UpstreamState = 'connecting';
  private stopping = false;
  private clientCounter = 0;
  private readonly startedAt = Date.now();
  private readonly counters = { events: 0, qemuErrors: 0, closedSessionErrors: 0, refused: 0, disconnects: {} as Record<string, number> };
  private warnedSilentUpstream = false;

  constructor(
    private readonly options: Options,
    private readonly source: UpstreamSource,
    private readonly log: Logger,
    /** Sockets systemd passed, by the name of the endpoint that takes each. */
    inherited: ReadonlyMap<string, InheritedSocket> = new Map(),
  ) {
    this.dispatcher = new Dispatcher(options.window);
    this.endpoints = options.endpoints.map((e) => new Endpoint(e, inherited.get(e.name)));
    this.events = new EventFanOut(this.endpoints);
  }

  /** Listens on every endpoint, then starts looking for QEMU. Returns the endpoints, bound. */
  async start(): Promise<Endpoint[]> {
    try {
      for (const endpoint of this.endpoints) {
        await endpoint.listen((socket) => this.accept(socket, endpoint));
        this.log.info('listening', { endpoint: endpoint.name, address: formatAddress(endpoint.address), systemdFd: endpoint.inherited?.fd });
      }
    } catch (e) {
      await Promise.all(this.endpoints.map((ep) => ep.close()));
      throw e;
    }
    this.source.start((socket) => this.attachUpstream(socket));
    return this.endpoints;
  }

  /**
   * Stops: no new clients, no more input; replies already owed go out
   * (for at most the shutdown timeout); then connections close, a QEMU
   * qmp-mux started is dealt with as configured, socket files are removed.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await Promise.all(this.endpoints.map((e) => e.close()));
    for (const client of this.clients) {
      if (client.state === 'waiting') client.end('stopping');
      else client.stopReading();
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.dispatcher.idle(), new Promise<void>((r) => (timer = setTimeout(r, this.options.timeouts.shutdownMs)))]);
    clearTimeout(timer);
    for (const client of this.clients) client.end('stopping');
    await this.source.stop((name) => this.dispatcher.call(name));
    this.upstreamState = 'stopped';
    this.upstream?.close('qmp-mux stopping');
  }

  // ClientOwner

  route(client: Client, command: Command): string | Command {
    const endpoint = client.endpoint;
    if (!endpoint.policy.allows(command.name)) {
      this.counters.refused++;
      this.log.warn('refused a command', { endpoint: endpoint.name, client: client.peer, command: command.name });
      return errorResponse(command.idText, 'GenericError', refusal(command.name, endpoint.name));
    }
    if (command.name.startsWith(EXTENSION_PREFIX)) return runExtension(command, this);
    if (command.name === 'query-commands') return { ...command, transform: filterCommandList(endpoint.policy) };
    return command;
  }

  commandsQueued(session: Session): void {
    this.dispatcher.wake(session);
  }

  sendOob(session: Session, command: Command): void {
    this.dispatcher.sendOob(session, command);
  }

  negotiated(client: Client): void {
    client.endpoint.listening.add(client);
  }

  gone(client: Client): void {
    this.clients.delete(client);
    client.endpoint.clients.delete(client);
    client.endpoint.listening.delete(client);
    this.counters.closedSessionErrors += client.session?.errors ?? 0;
    this.counters.disconnects[client.reason] = (this.counters.disconnects[client.reason] ?? 0) + 1;
    const reason = DISCONNECT_REASONS[client.reason] + (client.detail ? ` (${client.detail})` : '');
    this.log.info('client disconnected', { endpoint: client.endpoint.name, client: client.peer, reason });
  }

  // ProxyView

  listClients(): ClientInfo[] {
    return [...this.clients].map((c) => ({
      client: c.number,
      endpoint: c.endpoint.name,
      peer: c.peer,
      connectedSince: c.connectedAt,
      negotiated: c.session?.state === 'command',
      commands: c.session?.commandsSent ?? 0,
      inFlight: c.session?.pending ?? 0,
      bytesQueued: c.bytesQueued,
    }));
  }

  describe(): ProxyInfo {
    let errors = this.counters.qemuErrors + this.counters.closedSessionErrors + this.counters.refused;
    for (const c of this.clients) errors += c.session?.errors ?? 0;
    return {
      version: VERSION,
      uptimeSeconds: (Date.now() - this.startedAt) / 1000,
      upstreamState: this.upstreamState,
      upstreamMode: this.options.upstream.mode,
      qemu: this.greeting?.versionValue,
      clients: this.clients.size,
      counters: { commands: this.dispatcher.stats.sent, events: this.counters.events, errors, refused: this.counters.refused, disconnects: { ...this.counters.disconnects } },
    };
  }

  private accept(socket: Socket, endpoint: Endpoint): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const number = ++this.clientCounter;
    const peer = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : `local#${number}`;
    const client = new Client(socket, endpoint, peer, number, this, this.log);
    this.clients.add(client);
    this.log.info('client connected', { endpoint: endpoint.name, client: peer });
    if (endpoint.clients.size >= endpoint.options.maxClients) {
      client.refuse('too-many-clients', `Too many clients on endpoint '${endpoint.name}' (at most ${endpoint.options.maxClients})`);
      return;
    }
    endpoint.clients.add(client);
    if (this.greeting) client.greet(this.greeting);
    else client.awaitGreeting(this.options.timeouts.clientGreetingMs);
  }

  private attachUpstream(socket: Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    this.upstreamState = 'negotiating';
    const connection = new UpstreamConnection(
      socket,
      {
        ready: (greeting) => this.onUpstreamReady(connection, greeting),
        message: (m) => this.onUpstreamMessage(m),
        read: () => this.events.flush(),
        anomaly: (what, bytes) => this.log.debug(`QEMU sent ${what}`, { bytes: bytes.toString('utf8').slice(0, 200) }),
        closed: (reason) => this.onUpstreamClosed(connection, reason),
      },
      { maxMessageSize: this.options.maxUpstreamMessage, greetingTimeoutMs: this.options.timeouts.upstreamGreetingMs },
    );
    this.upstream = connection;
  }

  private onUpstreamReady(connection: UpstreamConnection, greeting: Greeting): void {
    this.greeting = greeting;
    this.upstreamState = 'ready';
    this.warnedSilentUpstream = false;
    this.source.ready();
    this.log.info('QEMU connected', { version: greeting.version, capabilities: greeting.capabilities.join(',') });
    this.dispatcher.attach((text) => {
      if (this.log.tracing) this.log.trace('to-qemu', 'qemu', text);
      connection.send(text);
    });
    for (const client of this.clients) client.greet(greeting);
  }

  private onUpstreamMessage(m: UpstreamMessage): void {
    if (this.log.tracing) this.log.trace('from-qemu', 'qemu', m.bytes);
    // Events that came before this message go out before it.
    if (m.kind !== 'event') this.events.flush();
    switch (m.kind) {
      case 'event':
        this.counters.events++;
        this.events.add(m.event ?? '', m.bytes);
        return;
      case 'return':
      case 'error':
        if (m.kind === 'error') this.counters.qemuErrors++;
        if (!this.dispatcher.reply(m)) this.log.debug('dropped a reply nobody is waiting for', { bytes: m.bytes.toString('utf8').slice(0, 200) });
        return;
      case 'greeting':
      case 'unknown':
        this.log.warn('unexpected message from QEMU', { bytes: m.bytes.toString('utf8').slice(0, 200) });
        return;
    }
  }

  private onUpstreamClosed(connection: UpstreamConnection, reason: string): void {
    if (this.upstream !== connection) return;
    this.upstream = undefined;
    const wasReady = this.greeting !== undefined;
    this.greeting = undefined;
    this.dispatcher.detach();
    if (this.stopping) return;
    this.upstreamState = 'connecting';
    if (wasReady) {
      this.log.warn('QEMU disconnected', { reason });
      // As with QEMU itself, clients see everything sent before the break, then EOF.
      for (const client of this.clients) {
        if (client.state !== 'waiting') client.end('qemu-gone');
      }
    } else if (!this.warnedSilentUpstream) {
      this.warnedSilentUpstream = true;
      this.log.warn('QEMU connection failed before negotiation, retrying', { reason });
    }
    this.source.lost();
  }
}
