import type { Socket } from 'node:net';
import { remoteProblem, type EndpointOptions } from './endpoint-options.ts';
import { ListenError } from '../errors.ts';
import { formatAddress, type Address } from '../net/address.ts';
import { listenInherited, type InheritedSocket } from '../net/systemd.ts';
import { Listener } from '../net/unix-socket.ts';
import { globMatcher } from '../policy/glob.ts';
import { Policy } from '../policy/policy.ts';

/** Where clients connect: a listener with its options, its policy and its event filter. */
export class Endpoint {
  policy: Policy;
  private eventFilter: (name: string) => boolean;
  private readonly eventCache = new Map<string, boolean>();
  private listener: Listener | undefined;
  private onConnection: ((socket: Socket) => void) | undefined;
  private onError: ((err: NodeJS.ErrnoException) => void) | undefined;

  constructor(
    /** Its options; a reload replaces them (see `update`). */
    public options: EndpointOptions,
    /** The socket systemd passed for it, used instead of its own address. */
    readonly inherited?: InheritedSocket,
  ) {
    this.policy = new Policy(options.policy);
    this.eventFilter = globMatcher(options.events);
  }

  get name(): string {
    return this.options.name;
  }

  /** Whether it is listening (between `listen` and `close`). */
  get listening(): boolean {
    return this.listener !== undefined;
  }

  /** Where it listens (the real port once bound). */
  get address(): Address {
    return this.listener?.address ?? this.options.address;
  }

  /** Listens; `onError` hears of errors once listening (running out of file descriptors, say). */
  async listen(onConnection: (socket: Socket) => void, onError: (err: NodeJS.ErrnoException) => void): Promise<void> {
    this.onConnection = onConnection;
    this.onError = onError;
    if (!this.inherited) {
      this.listener = await Listener.open(this.options.address, onConnection, { socket: this.options.socket, onError });
      return;
    }
    const { server, address } = await listenInherited(this.inherited, this.options.address, onConnection);
    const remote = remoteProblem(this.options, address);
    if (remote !== undefined) {
      server.close();
      throw new ListenError(`endpoint '${this.name}' (${formatAddress(address)}, the socket systemd passed as fd ${this.inherited.fd}): ${remote}`);
    }
    this.listener = Listener.adopt(server, address, { onError });
  }

  /**
   * Takes the options a reload gave it: its policy, events and limits hold
   * for the next command (its clients are told of new limits by the mux);
   * a new address or socket mode is listened on anew, and clients
   * connected at the old one stay. Rejects, changing nothing, if it cannot
   * listen there.
   */
  async update(options: EndpointOptions): Promise<void> {
    const moved = JSON.stringify([options.address, options.socket]) !== JSON.stringify([this.options.address, this.options.socket]);
    if (moved && this.listener && !this.inherited && this.onConnection && this.onError) {
      const fresh = await Listener.open(options.address, this.onConnection, { socket: options.socket, onError: this.onError });
      const old = this.listener;
      this.listener = fresh;
      await old.close();
    }
    this.options = options;
    this.policy = new Policy(options.policy);
    this.eventFilter = globMatcher(options.events);
    this.eventCache.clear();
  }

  /** Whether its unix socket file is still the one it created. */
  async ownsSocketFile(): Promise<boolean> {
    return (await this.listener?.ownsSocketFile()) ?? false;
  }

  /** Listens anew at its address (its socket file was taken away); connected clients stay. */
  async relisten(): Promise<void> {
    const old = this.listener;
    if (!old || !this.onConnection || !this.onError) return;
    const fresh = await Listener.open(this.options.address, this.onConnection, { socket: this.options.socket, onError: this.onError });
    if (this.listener !== old) {
      // Closed meanwhile: qmp-mux is stopping.
      await fresh.close();
      return;
    }
    old.server.close();
    this.listener = fresh;
  }

  /** Stops accepting; removes the unix socket file it made. */
  async close(): Promise<void> {
    const listener = this.listener;
    this.listener = undefined;
    await listener?.close();
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
