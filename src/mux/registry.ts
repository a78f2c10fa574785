import type { Client } from '../downstream/client.ts';
import type { Endpoint } from '../downstream/endpoint.ts';
import type { Session } from '../qmp/session.ts';

/**
 * The clients connected, by endpoint, and which of their sessions receive
 * events (those that negotiated). The mux adds and removes clients; a
 * client's router subscribes its session.
 */
export class ClientRegistry {
  private readonly all = new Set<Client>();
  private readonly clients = new Map<Endpoint, Set<Client>>();
  private readonly subscribers = new Map<Endpoint, Set<Session>>();

  /** Every client, in the order they connected. */
  [Symbol.iterator](): IterableIterator<Client> {
    return this.all.values();
  }

  get size(): number {
    return this.all.size;
  }

  add(client: Client): void {
    this.all.add(client);
    this.of(this.clients, client.endpoint).add(client);
  }

  remove(client: Client): void {
    this.all.delete(client);
    this.clients.get(client.endpoint)?.delete(client);
  }

  /** Clients connected to `endpoint`. */
  count(endpoint: Endpoint): number {
    return this.clients.get(endpoint)?.size ?? 0;
  }

  subscribe(endpoint: Endpoint, session: Session): void {
    this.of(this.subscribers, endpoint).add(session);
  }

  unsubscribe(endpoint: Endpoint, session: Session): void {
    this.subscribers.get(endpoint)?.delete(session);
  }

  /** Sessions of `endpoint` that receive events. */
  subscribersOf(endpoint: Endpoint): ReadonlySet<Session> {
    return this.subscribers.get(endpoint) ?? NONE;
  }

  private of<T>(map: Map<Endpoint, Set<T>>, endpoint: Endpoint): Set<T> {
    let set = map.get(endpoint);
    if (!set) map.set(endpoint, (set = new Set()));
    return set;
  }
}

const NONE: ReadonlySet<never> = new Set();
