import type { Socket } from 'node:net';
import type { TimeoutOptions } from '../config/options.ts';
import { ClientConnection } from '../downstream/client-connection.ts';
import { DISCONNECT_REASONS, type DisconnectReason } from '../downstream/disconnect.ts';
import type { CommandRoute } from '../downstream/client-route.ts';
import type { Endpoint } from '../downstream/endpoint.ts';
import type { Logger } from '../log.ts';
import { descriptorLimit, descriptorsOpen } from '../net/descriptors.ts';
import type { SocketFlusher } from '../net/socket-writer.ts';
import type { EndpointMetrics } from '../ops/mux-metrics.ts';
import type { Greeting } from '../qmp/greeting.ts';
import { ConnectionLog } from './connection-log.ts';
import type { ClientRegistry } from './registry.ts';

/**
 * File descriptors kept free for what qmp-mux needs besides its clients
 * (QEMU, listening anew, files): a client that would leave fewer free is
 * refused.
 */
export const DESCRIPTOR_RESERVE = 16;

/**
 * Refused connections kept open at once while their refusal is read (up
 * to closeMs); past this, the oldest is closed. They are not clients, and
 * no other limit counts them: a peer opening connections to a full
 * endpoint as fast as it can, reading nothing, held thousands, and took
 * the descriptors other endpoints' clients needed. The refusal is written
 * as it is made, so a closed one is rarely lost.
 */
export const REFUSED_LINGERING = 8;

export interface IntakeOptions {
  registry: ClientRegistry;
  log: Logger;
  flusher: SocketFlusher;
  /** `closeMs` and `clientGreetingMs`, read as each client comes (a reload may change them). */
  timeouts: Readonly<Pick<TimeoutOptions, 'closeMs' | 'clientGreetingMs'>>;
  metricsOf(endpoint: Endpoint): EndpointMetrics;
  /** QEMU's greeting, while it is there. */
  greeting(): Greeting | undefined;
  /** Where a greeted client's commands go. */
  routeFor(client: ClientConnection): CommandRoute;
  onNegotiated(client: ClientConnection): void;
  onClosed(client: ClientConnection): void;
}

/**
 * Takes clients in: numbers each, refuses it with a QMP error when its
 * endpoint is full or when qmp-mux would eat into its reserve of file
 * descriptors (saying so once, and once more when it can take clients
 * again), greets it at once if QEMU is there, or has it wait.
 */
export class ClientIntake {
  /** Client connections open, closing ones included. */
  private connections = 0;
  private descriptorsAtFirstClient: number | undefined;
  private clientCounter = 0;
  private failing = false;
  private readonly limit = descriptorLimit();
  private stopping = false;
  /** Refused connections not yet closed, oldest first. */
  private readonly refused = new Set<ClientConnection>();
  private readonly connectionLogs = new WeakMap<Endpoint, ConnectionLog>();

  constructor(private readonly options: IntakeOptions) {}

  /** Told when the last client connection has closed. */
  private lastClosed: (() => void) | undefined;

  /** Takes no more clients (qmp-mux is stopping). */
  stop(): void {
    this.stopping = true;
  }

  /** Resolves once every client connection has closed (each has been logged as disconnected). */
  allClosed(): Promise<void> {
    if (this.connections === 0) return Promise.resolve();
    return new Promise((resolve) => (this.lastClosed = resolve));
  }

  accept(socket: Socket, endpoint: Endpoint): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const { options } = this;
    this.connections++;
    const metrics = options.metricsOf(endpoint);
    metrics.connected();
    const spare = this.spareDescriptors();
    if (spare >= 0 && this.failing) {
      this.failing = false;
      options.log.info('accepting clients again', { endpoint: endpoint.name });
    }
    const number = ++this.clientCounter;
    const peer = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : `local#${number}`;
    const admission = endpoint.admit(socket);
    const logged = this.connectionLog(endpoint).admit();
    const access = 'access' in admission ? admission.access : endpoint.access;
    const client = new ClientConnection({
      socket,
      endpoint,
      access,
      certificate: admission.certificate,
      number,
      peer,
      log: options.log,
      flusher: options.flusher,
      counters: metrics,
      lingerMs: options.timeouts.closeMs,
      onNegotiated: () => options.onNegotiated(client),
      onClosed: () => {
        this.connections--;
        this.refused.delete(client);
        options.onClosed(client);
        if (logged) this.loggedClosed(client);
        if (this.connections === 0) this.lastClosed?.();
      },
    });
    if (logged) options.log.info('client connected', { endpoint: endpoint.name, client: peer, identity: access.identity, subject: admission.certificate?.subject });
    if (spare < 0) {
      this.failed(endpoint, `${descriptorsOpen()} file descriptors open, ${this.limit} allowed`);
      this.refuse(client, 'no-descriptors', 'qmp-mux has no file descriptors to spare; try again later');
      return;
    }
    if ('refused' in admission) {
      this.refuse(client, 'no-identity', admission.refused);
      return;
    }
    const max = endpoint.options.maxClients;
    if (options.registry.count(endpoint) >= max) {
      // Not a client of the endpoint: it holds no place there while its connection closes.
      this.refuse(client, 'too-many-clients', `Too many clients on endpoint '${endpoint.name}' (at most ${max})`);
      return;
    }
    const { identity } = access;
    if (identity !== undefined && options.registry.countIdentity(endpoint, identity) >= access.options.maxClients) {
      this.refuse(client, 'too-many-clients', `Too many clients of identity '${identity}' on endpoint '${endpoint.name}' (at most ${access.options.maxClients})`);
      return;
    }
    options.registry.add(client);
    const greeting = options.greeting();
    if (greeting) client.greet(greeting, options.routeFor(client));
    else client.awaitGreeting(options.timeouts.clientGreetingMs);
  }

  private connectionLog(endpoint: Endpoint): ConnectionLog {
    let log = this.connectionLogs.get(endpoint);
    if (!log) this.connectionLogs.set(endpoint, (log = new ConnectionLog(this.options.log, endpoint.name)));
    return log;
  }

  private loggedClosed(client: ClientConnection): void {
    const reason = DISCONNECT_REASONS[client.reason] + (client.detail ? ` (${client.detail})` : '');
    this.options.log.info('client disconnected', { endpoint: client.endpoint.name, client: client.peer, identity: client.access.identity, subject: client.certificate?.subject, reason, refused: client.route?.refused || undefined });
  }

  /** Refuses `client` with a QMP error; the oldest refused connection still open is closed past REFUSED_LINGERING. */
  private refuse(client: ClientConnection, reason: DisconnectReason, desc: string): void {
    client.refuse(reason, desc);
    this.refused.add(client);
    if (this.refused.size <= REFUSED_LINGERING) return;
    const [oldest] = this.refused;
    this.refused.delete(oldest!);
    oldest!.cutOff();
  }

  /** Clients cannot be accepted (no file descriptors to spare): said once, until one is again. */
  failed(endpoint: Endpoint, why: string): void {
    if (this.failing) return;
    this.failing = true;
    this.options.log.error('cannot accept clients', { endpoint: endpoint.name, why });
  }

  /**
   * File descriptors left free beyond the reserve, the connection just
   * accepted counted; negative when it eats into the reserve. Counted only
   * when clients could be using a good part of them (the count reads
   * /proc): what was open at the first client, and clients since, counted
   * twice for what else may have opened meanwhile.
   */
  private spareDescriptors(): number {
    const room = this.limit - DESCRIPTOR_RESERVE;
    this.descriptorsAtFirstClient ??= descriptorsOpen();
    if ((this.descriptorsAtFirstClient + this.connections) * 2 < room) return Infinity;
    return room - descriptorsOpen();
  }
}
