import { parseCondition } from '../downstream/identity.ts';
import type { AccessOptions, IdentityOptions, LimitOptions } from '../downstream/endpoint-options.ts';
import { TLS_SERVER_DEFAULTS, type TlsServerSettings } from '../net/tls-server.ts';
import { DEFAULT_MIN_TLS_VERSION, TLS_VERSIONS, type TlsClientSettings } from '../net/tls.ts';
import type { PolicyOptions } from '../policy/policy.ts';
import { copyPolicy } from '../policy/presets.ts';
import { boolean, fail, integer, object, oneOf, optional, string, stringList } from './fields.ts';

/** The configuration file's `tls` objects and an endpoint's `identities`, read and checked. */

const MINUTE_MS = 60_000;

/**
 * A listener's `tls` (an endpoint's, the metrics listener's): `cert` and
 * `key` required, `ca` required with `verifyPeer` (the default) and only
 * then.
 */
export function readServerTls(v: unknown, path: string): TlsServerSettings {
  const t = object(v, path, ['cert', 'key', 'ca', 'verifyPeer', 'minVersion', 'handshakeTimeoutMs']);
  const verifyPeer = optional(t, 'verifyPeer', path, boolean) ?? TLS_SERVER_DEFAULTS.verifyPeer;
  const ca = optional(t, 'ca', path, string);
  if (verifyPeer && ca === undefined) fail(`${path}.ca`, 'give the CA certificates client certificates must chain to (or set verifyPeer to false: then any client may connect)');
  if (!verifyPeer && ca !== undefined) fail(`${path}.ca`, 'only applies with verifyPeer');
  return {
    cert: string(t.cert, `${path}.cert`),
    key: string(t.key, `${path}.key`),
    ca,
    verifyPeer,
    minVersion: optional(t, 'minVersion', path, (x, q) => oneOf(x, q, TLS_VERSIONS)) ?? TLS_SERVER_DEFAULTS.minVersion,
    handshakeTimeoutMs: optional(t, 'handshakeTimeoutMs', path, (x, q) => integer(x, q, 100, MINUTE_MS)) ?? TLS_SERVER_DEFAULTS.handshakeTimeoutMs,
  };
}

/** The upstream's `tls`: every key optional (`ca` defaults to Node's roots, `serverName` to the host dialed). */
export function readClientTls(v: unknown, path: string): TlsClientSettings {
  const t = object(v, path, ['cert', 'key', 'ca', 'serverName', 'minVersion']);
  const out: TlsClientSettings = {
    cert: optional(t, 'cert', path, string),
    key: optional(t, 'key', path, string),
    ca: optional(t, 'ca', path, string),
    serverName: optional(t, 'serverName', path, string),
    minVersion: optional(t, 'minVersion', path, (x, q) => oneOf(x, q, TLS_VERSIONS)) ?? DEFAULT_MIN_TLS_VERSION,
  };
  if ((out.cert === undefined) !== (out.key === undefined)) fail(`${path}.${out.cert === undefined ? 'cert' : 'key'}`, 'give cert and key together');
  return out;
}

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
    const r = object(item, where, ['name', 'match', 'policy', 'events', 'limits', 'maxClients']);
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
