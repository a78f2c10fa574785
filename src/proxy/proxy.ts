import { unlink } from 'node:fs/promises';
import type { Server, Socket } from 'node:net';
import type { Options } from '../config/options.ts';
import { Client, type ClientOwner } from '../downstream/client.ts';
import { boundAddress, listen } from '../downstream/listener.ts';
import type { Logger } from '../log.ts';
import { formatAddress, type Address } from '../net/address.ts';
import type { Command, Session } from '../qmp/session.ts';
import type { UpstreamMessage } from '../qmp/upstream-framer.ts';
import { UpstreamConnection, type Greeting } from '../upstream/connection.ts';
import type { UpstreamSource } from '../upstream/dialer.ts';
import { Dispatcher } from './dispatcher.ts';
import { IdSource } from './ids.ts';
import { withEol } from './reply.ts';

/** An endpoint as it is listening. */
export interface BoundEndpoint {
  name: string;
  address: Address;
}

/**
 * qmp-mux itself: one upstream QEMU monitor, many client endpoints. Events
 * go to every negotiated client; replies go back to whoever asked.
 */
export class Proxy implements ClientOwner {
  private readonly ids = new IdSource();
  private readonly dispatcher: Dispatcher;
  private readonly servers: { server: Server; endpoint: BoundEndpoint }[] = [];
  private readonly clients = new Set<Client>();
  private readonly sessions = new Map<Session, Client>();
  private readonly listening = new Set<Client>();
  private upstream: UpstreamConnection | undefined;
  private greeting: Greeting | undefined;
  private stopping = false;
  private clientCounter = 0;

  constructor(
    private readonly options: Options,
    private readonly source: UpstreamSource,
    private readonly log: Logger,
  ) {
    this.dispatcher = new Dispatcher(this.ids, options.window);
  }

  /** Listens on every endpoint, then starts looking for QEMU. */
  async start(): Promise<BoundEndpoint[]> {
    for (const endpoint of this.options.endpoints) {
      const server = await listen(endpoint.address, (socket) => this.accept(socket, endpoint.name));
      const bound = { name: endpoint.name, address: boundAddress(server, endpoint.address) };
      this.servers.push({ server, endpoint: bound });
      this.log.info('listening', { endpoint: bound.name, address: formatAddress(bound.address) });
    }
    this.source.start((socket) => this.attachUpstream(socket));
    return this.servers.map((s) => s.endpoint);
  }

  /** Stops accepting, closes every connection and removes the unix sockets it created. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const { server } of this.servers) server.close();
    for (const client of this.clients) client.end('qmp-mux stopping');
    this.upstream?.close('qmp-mux stopping');
    await this.source.stop();
    for (const { endpoint } of this.servers) {
      if (endpoint.address.type === 'unix') await unlink(endpoint.address.path).catch(() => undefined);
    }
  }

  /** Whether QEMU is connected and negotiated. */
  get upstreamReady(): boolean {
    return this.greeting !== undefined;
  }

  commandsQueued(session: Session): void {
    this.dispatcher.wake(session);
  }

  sendOob(session: Session, command: Command): void {
    this.dispatcher.sendOob(session, command);
  }

  negotiated(client: Client): void {
    this.listening.add(client);
  }

  gone(client: Client): void {
    this.clients.delete(client);
    this.listening.delete(client);
    if (client.session) this.sessions.delete(client.session);
    this.log.info('client disconnected', { endpoint: client.endpoint, client: client.peer, reason: client.closeReason });
  }

  private accept(socket: Socket, endpoint: string): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const peer = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : `local#${++this.clientCounter}`;
    const client = new Client(socket, endpoint, peer, this, this.options.limits, this.log);
    this.clients.add(client);
    this.log.info('client connected', { endpoint, client: peer });
    if (this.greeting) this.greet(client, this.greeting);
  }

  private greet(client: Client, greeting: Greeting): void {
    client.greet(greeting);
    if (client.session) this.sessions.set(client.session, client);
  }

  private attachUpstream(socket: Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const connection = new UpstreamConnection(socket, {
      ready: (greeting) => this.onUpstreamReady(connection, greeting),
      message: (m) => this.onUpstreamMessage(m),
      anomaly: (what, bytes) => this.log.debug(`QEMU sent ${what}`, { bytes: bytes.toString('utf8').slice(0, 200) }),
      closed: (reason) => this.onUpstreamClosed(connection, reason),
    }, this.ids, this.options.limits.maxUpstreamMessage);
    this.upstream = connection;
  }

  private onUpstreamReady(connection: UpstreamConnection, greeting: Greeting): void {
    this.greeting = greeting;
    this.source.ready();
    this.log.info('QEMU connected', { version: greeting.version, capabilities: greeting.capabilities.join(',') });
    this.dispatcher.attach((text) => {
      if (this.log.tracing) this.log.trace('to-qemu', 'qemu', text);
      connection.send(text);
    });
    for (const client of this.clients) this.greet(client, greeting);
  }

  private onUpstreamMessage(m: UpstreamMessage): void {
    if (this.log.tracing) this.log.trace('from-qemu', 'qemu', m.bytes);
    switch (m.kind) {
      case 'event': {
        const bytes = withEol(m.bytes);
        for (const client of this.listening) client.session?.event(bytes);
        return;
      }
      case 'return':
      case 'error':
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
    if (wasReady) {
      this.log.warn('QEMU disconnected', { reason });
      // As with QEMU itself, clients see everything sent before the break, then EOF.
      for (const client of this.clients) {
        if (client.state !== 'waiting') client.end('QEMU disconnected');
      }
    }
    if (!this.stopping) this.source.lost();
  }
}
