import type { EndpointOptions, Options } from '../config/options.ts';
import { ConfigError } from '../errors.ts';

/** What a reload changes, by endpoint name. */
export interface ReloadPlan {
  /** Endpoints to listen on anew. */
  added: EndpointOptions[];
  /** Endpoints to close, their clients with them. */
  removed: string[];
  /** Endpoints whose options change (policy, events, limits, identities, address...), with their new options. */
  changed: EndpointOptions[];
}

/**
 * What reloading would do, from the running options to `next`. Everything
 * about endpoints (but whether one has TLS and how it checks clients: its
 * files and protocol floor can change), the limits, the windows, the
 * timeouts and the log level can change without dropping a client; QEMU's
 * link, the journal, the audit log, the metrics listener and the log's
 * format cannot (they are what a restart is for; TLS files are read again
 * all the same): a reload that changes them is refused, naming what, and
 * the running configuration stays.
 */
export function planReload(current: Options, next: Options): ReloadPlan {
  const fixed: [string, unknown, unknown][] = [
    ['upstream', current.upstream, next.upstream],
    ['backoff', current.backoff, next.backoff],
    ['journal', current.journal, next.journal],
    ['audit', current.audit, next.audit],
    ['metrics', current.metrics, next.metrics],
    ['log.format', current.log.format, next.log.format],
    ['log.trace', current.log.trace, next.log.trace],
  ];
  // A TLS listener's files and protocol floor change in place; whether it has TLS, and its client checks, take a new listener.
  const listenerTls = (e: EndpointOptions): unknown => e.tls && { verifyPeer: e.tls.verifyPeer, handshakeTimeoutMs: e.tls.handshakeTimeoutMs };
  for (const e of next.endpoints) {
    const old = current.endpoints.find((o) => o.name === e.name);
    if (old) fixed.push([`endpoint '${e.name}' tls (but its files and minVersion)`, listenerTls(old), listenerTls(e)]);
  }
  const moved = fixed.filter(([, a, b]) => !same(a, b)).map(([what]) => what);
  if (moved.length > 0) throw new ConfigError(`${moved.join(', ')} cannot change without a restart; the running configuration stays`);
  const before = new Map(current.endpoints.map((e) => [e.name, e]));
  const after = new Set(next.endpoints.map((e) => e.name));
  const plan: ReloadPlan = { added: [], removed: current.endpoints.filter((e) => !after.has(e.name)).map((e) => e.name), changed: [] };
  for (const e of next.endpoints) {
    const old = before.get(e.name);
    if (!old) plan.added.push(e);
    else if (!same(old, e)) plan.changed.push(e);
  }
  return plan;
}

/** Whether two option values say the same (they are plain data: JSON tells). */
function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
