import type { EndpointOptions, Options } from '../config/options.ts';
import { ConfigError } from '../errors.ts';

/** What a reload changes, by endpoint name. */
export interface ReloadPlan {
  /** Endpoints to listen on anew. */
  added: EndpointOptions[];
  /** Endpoints to close, their clients with them. */
  removed: string[];
  /** Endpoints whose options change (policy, events, limits, address...), with their new options. */
  changed: EndpointOptions[];
  /** Of those, the ones whose limits change: their clients are told. */
  newLimits: Set<string>;
}

/**
 * What reloading would do, from the running options to `next`. Everything
 * about endpoints, the limits, the windows, the timeouts and the log level
 * can change without dropping a client; QEMU's link, the journal, the
 * audit log, the metrics listener and the log's format cannot (they are
 * what a restart is for): a reload that changes them is refused, naming
 * what, and the running configuration stays.
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
  const moved = fixed.filter(([, a, b]) => !same(a, b)).map(([what]) => what);
  if (moved.length > 0) throw new ConfigError(`${moved.join(', ')} cannot change without a restart; the running configuration stays`);
  const before = new Map(current.endpoints.map((e) => [e.name, e]));
  const after = new Set(next.endpoints.map((e) => e.name));
  const plan: ReloadPlan = { added: [], removed: current.endpoints.filter((e) => !after.has(e.name)).map((e) => e.name), changed: [], newLimits: new Set() };
  for (const e of next.endpoints) {
    const old = before.get(e.name);
    if (!old) plan.added.push(e);
    else if (!same(old, e)) {
      plan.changed.push(e);
      if (!same(old.limits, e.limits)) plan.newLimits.add(e.name);
    }
  }
  return plan;
}

/** Whether two option values say the same (they are plain data: JSON tells). */
function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
