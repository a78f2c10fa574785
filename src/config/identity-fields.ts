import { parseCondition } from '../downstream/identity.ts';
import type { AccessOptions, IdentityOptions, LimitOptions } from '../downstream/endpoint-options.ts';
import type { PolicyOptions } from '../policy/policy.ts';
import { copyPolicy } from '../policy/presets.ts';
import type { IdentityConfig } from './config-types.ts';
import { fail, integer, keysOf, object, optional, string, stringList } from './fields.ts';

/** An endpoint's `identities`, read and checked. */

/** How an identity's settings are read where it leaves them to its endpoint. */
export interface IdentityReaders {
  /** The endpoint's policy, events and maxClients, for what a rule leaves out. */
  endpoint: Readonly<AccessOptions>;
  readPolicy(v: unknown, path: string): PolicyOptions;
  /** A rule's limits: its own (`v`), then the endpoint's, the file's, its policy's preset's (`policy`, raw; undefined: the endpoint's). */
  limits(v: unknown, path: string, policy: unknown): LimitOptions;
}

/**
 * An endpoint's `identities`: `[{"name", "match", "policy", "events",
 * "limits", "maxClients"}]`, checked in order. `match` is one condition or
 * a list (all must hold); `name` defaults to the conditions; what a rule
 * leaves out is its endpoint's.
 */
export function readIdentities(v: unknown, path: string, readers: IdentityReaders): IdentityOptions[] {
  if (!Array.isArray(v)) fail(path, 'expected an array of identities, e.g. [{"match": "CN=collector", "policy": "read-only"}]');
  const names = new Set<string>();
  return v.map((item: unknown, i) => {
    const where = `${path}[${i}]`;
    const r = object(item, where, keysOf<IdentityConfig>({ name: true, match: true, policy: true, events: true, limits: true, maxClients: true }));
    const match = typeof r.match === 'string' ? [string(r.match, `${where}.match`)] : stringList(r.match, `${where}.match`, { nonEmpty: true });
    match.forEach((text, j) => {
      const parsed = parseCondition(text);
      if (typeof parsed === 'string') fail(typeof r.match === 'string' ? `${where}.match` : `${where}.match[${j}]`, parsed);
    });
    const name = optional(r, 'name', where, string) ?? match.join(',');
    if (names.has(name)) fail(`${where}.name`, `'${name}' is used by another identity of this endpoint`);
    names.add(name);
    const { endpoint } = readers;
    return {
      name,
      match,
      policy: optional(r, 'policy', where, readers.readPolicy) ?? copyPolicy(endpoint.policy),
      events: optional(r, 'events', where, stringList) ?? [...endpoint.events],
      limits: readers.limits(r.limits, `${where}.limits`, r.policy),
      maxClients: optional(r, 'maxClients', where, (x, q) => integer(x, q, 1, endpoint.maxClients)) ?? endpoint.maxClients,
    };
  });
}
