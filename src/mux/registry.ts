import type { ClientConnection } from '../downstream/client-connection.ts';
import type { Endpoint } from '../downstream/endpoint.ts';

/** The clients connected, in the order they connected, and by endpoint. */
export class ClientRegistry {
  private readonly all = new Set<ClientConnection>();
  private readonly byEndpoint = new Map<Endpoint, Set<ClientConnection>>();

  [Symbol.iterator](): IterableIterator<ClientConnection> {
    return this.all.values();
  }

  get size(): number {
    return this.all.size;
  }

  add(client: ClientConnection): void {
    this.all.add(client);
    let clients = this.byEndpoint.get(client.endpoint);
    if (!clients) this.byEndpoint.set(client.endpoint, (clients = new Set()));
    clients.add(client);
  }

  remove(client: ClientConnection): void {
    this.all.delete(client);
    this.byEndpoint.get(client.endpoint)?.delete(client);
  }

  /** Clients connected to `endpoint`. */
  count(endpoint: Endpoint): number {
    return this.byEndpoint.get(endpoint)?.size ?? 0;
  }

  /** Bytes written to `endpoint`'s clients and not yet taken by them. */
  bytesQueued(endpoint: Endpoint): number {
    let sum = 0;
    for (const client of this.byEndpoint.get(endpoint) ?? []) sum += client.bytesQueued;
    return sum;
  }
}
