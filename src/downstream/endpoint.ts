import type { Server, Socket } from 'node:net';
import type { EndpointOptions } from '../config/options.ts';
import { ListenError } from '../errors.ts';
import { formatAddress, type Address } from '../net/address.ts';
import { listenInherited, type InheritedSocket } from '../net/systemd.ts';
import { globMatcher } from '../policy/glob.ts';
import { Policy } from '../policy/policy.ts';
import type { Client } from './client.ts';
import { boundAddress, closeListener, isLoopback, listen, ownsSocketFile } from './listener.ts';

/** A place clients connect to, with its own policy, event filter and limits. */
export class Endpoint {
  readonly policy: Policy;
  readonly clients = new Set<Client>();
  /** Clients on this endpoint that have negotiated and so receive events. */
  readonly listening = new Set<Client>();
  private readonly eventFilter: (name: string) => boolean;
  private readonly eventCache = new Map<string, boolean>();
  private server: Server | undefined;
  private bound: Address | undefined;
  private onConnection: ((socket: Socket) => void) | undefined;

  /** `inherited`: the socket systemd passed for it, used instead of its own address. */
  constructor(
    readonly options: EndpointOptions,
    readonly inherited?: InheritedSocket,
  ) {
    this.policy = new Policy(options.policy);
    this.eventFilter = globMatcher(options.events);
  }

  get name(): string {
    return this.options.name;
  }

  /** Where it listens (the real port once bound). */
  get address(): Address {
    return this.bound ?? this.options.address;
  }

  async listen(onConnection: (socket: Socket) => void): Promise<void> {
    const a = this.options.address;
    this.onConnection = onConnection;
    if (this.inherited) {
      const { server, address } = await listenInherited(this.inherited, a, onConnection);
      this.server = server;
      this.bound = address;
      this.refuseRemote(address, ` (the socket systemd passed, fd ${this.inherited.fd})`);
      return;
    }
    this.refuseRemote(a, '');
    this.server = await listen(a, onConnection, this.options.socket);
    this.bound = boundAddress(this.server, a);
  }

  private refuseRemote(a: Address, source: string): void {
    if (a.type === 'tcp' && !isLoopback(a.host) && !this.options.allowRemote) {
      throw new ListenError(`endpoint '${this.name}': ${formatAddress(a)}${source} is not a loopback address; QMP has no authentication, so set allowRemote to expose it`);
    }
  }

  /** Whether its unix socket file is still the one it created. */
  async ownsSocketFile(): Promise<boolean> {
    const a = this.options.address;
    return this.server !== undefined && a.type === 'unix' && ownsSocketFile(this.server, a.path);
  }

  /** Listens anew at its address (its socket file was taken away); connected clients stay. */
  async relisten(): Promise<void> {
    const old = this.server;
    if (!old || !this.onConnection) return;
    const fresh = await listen(this.options.address, this.onConnection, this.options.socket);
    if (this.server !== old) {
      // Closed meanwhile: qmp-mux is stopping.
      await closeListener(fresh, this.options.address);
      return;
    }
    old.close();
    this.server = fresh;
  }

  /** Stops accepting; removes the unix socket file it created (never systemd's). */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    if (this.inherited) server.close();
    else await closeListener(server, this.options.address);
  }

  /** Whether this endpoint's clients receive event `name`. */
  wantsEvent(name: string): boolean {
    let verdict = this.eventCache.get(name);
    if (verdict === undefined) {
      verdict = this.eventFilter(name);
      if (this.eventCache.size < 1024) this.eventCache.set(name, verdict);
    }
    return verdict;
  }
}
