import type { ClientConnection } from '../downstream/client-connection.ts';
import type { EventFanOut } from '../events/fan-out.ts';

/**
 * A client of an endpoint a reload changed gets the access its
 * certificate gives now: its events move along with it, and it is told of
 * new limits; when its certificate matches no identity any more, it ends.
 */
export function reassign(client: ClientConnection, fanOut: EventFanOut): void {
  const admission = client.endpoint.accessFor(client.certificate);
  if (!('access' in admission)) {
    client.end('no-identity');
    return;
  }
  const old = client.access;
  client.access = admission.access;
  if (client.session) fanOut.move(client.session, old, admission.access);
  if (JSON.stringify(old.limits) !== JSON.stringify(admission.access.limits)) client.limitsChanged();
}
