import type { Client } from '../downstream/client-connection.ts';
import type { Endpoint } from '../downstream/endpoint.ts';
import { globMatcher } from '../policy/glob.ts';
import type { Session } from '../qmp/monitor-session.ts';

/** The events one client chose to receive (`set-events`), within its endpoint's. */
export interface EventChoice {
  readonly patterns: readonly string[];
  accepts(name: string): boolean;
}

/**
 * The clients connected, by endpoint, and which of their sessions receive
 * events (those that negotiated), with the events each chose. The mux adds
 * and removes clients; a client's router subscribes its session and
 * records its choice.
 */
export class ClientRegistry {
  private readonly all = new Set<Client>();
  private readonly clients = new Map<Endpoint, Set<Client>>();
  private readonly subscribers = new Map<Endpoint, Map<Session, EventChoice | undefined>>();

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

  /** Bytes written to `endpoint`'s clients and not yet taken by them. */
  bytesQueued(endpoint: Endpoint): number {
    let sum = 0;
    for (const client of this.clients.get(endpoint) ?? []) sum += client.bytesQueued;
    return sum;
  }

  /** The session receives its endpoint's events from now on. */
  subscribe(endpoint: Endpoint, session: Session): void {
    let sessions = this.subscribers.get(endpoint);
    if (!sessions) this.subscribers.set(endpoint, (sessions = new Map()));
    sessions.set(session, undefined);
  }

  unsubscribe(endpoint: Endpoint, session: Session): void {
    this.subscribers.get(endpoint)?.delete(session);
  }

  /** The session receives only the events `patterns` match, of its endpoint's (`["*"]`: all of them). */
  choose(endpoint: Endpoint, session: Session, patterns: readonly string[]): void {
    const sessions = this.subscribers.get(endpoint);
    if (!sessions?.has(session)) return;
    sessions.set(session, patterns.includes('*') ? undefined : { patterns: [...patterns], accepts: globMatcher(patterns) });
  }

  /** The events a session chose, if it chose. */
  choiceOf(endpoint: Endpoint, session: Session): EventChoice | undefined {
    return this.subscribers.get(endpoint)?.get(session);
  }

  /** Sessions of `endpoint` that receive events, with what each chose. */
  subscribersOf(endpoint: Endpoint): ReadonlyMap<Session, EventChoice | undefined> {
    return this.subscribers.get(endpoint) ?? NONE;
  }

  private of<T>(map: Map<Endpoint, Set<T>>, endpoint: Endpoint): Set<T> {
    let set = map.get(endpoint);
    if (!set) map.set(endpoint, (set = new Set()));
    return set;
  }
}

const NONE: ReadonlyMap<Session, EventChoice | undefined> = new Map();
