import { TLS_SERVER_DEFAULTS, type TlsServerSettings } from '../net/tls-server.ts';
import { DEFAULT_MIN_TLS_VERSION, TLS_VERSIONS, type TlsClientSettings, type TlsVersion } from '../net/tls.ts';
import { boolean, fail, integer, keysOf, object, oneOf, optional, string, type Commented } from './fields.ts';

/** The configuration file's `tls` objects, read and checked. */

/** A listener's `tls` in the configuration file (an endpoint's, the metrics listener's). */
export interface TlsServerConfig extends Commented {
  /** The server's certificate (then any intermediates), PEM. */
  cert: string;
  /** Its private key, PEM, unencrypted. */
  key: string;
  /** The CA certificates client certificates must chain to, PEM: required with `verifyPeer`, and only then. */
  ca?: string;
  /** Require a client certificate that chains to `ca` (QEMU's `verify-peer`). Default true. */
  verifyPeer?: boolean;
  /** Default `TLSv1.2`. */
  minVersion?: TlsVersion;
  /** ms a connection may take to finish its handshake. Default 10000. */
  handshakeTimeoutMs?: number;
}

/** The upstream's `tls` (QEMU's monitor served with `tls-creds-x509`): every member optional. */
export interface TlsClientConfig extends Commented {
  /** qmp-mux's certificate, presented to QEMU (with `key`). */
  cert?: string;
  key?: string;
  /** The CA QEMU's certificate must chain to; Node's roots by default. */
  ca?: string;
  /** The name QEMU's certificate must carry; the host dialed by default. */
  serverName?: string;
  minVersion?: TlsVersion;
}

const MINUTE_MS = 60_000;

/**
 * A listener's `tls` (an endpoint's, the metrics listener's): `cert` and
 * `key` required, `ca` required with `verifyPeer` (the default) and only
 * then.
 */
export function readServerTls(v: unknown, path: string): TlsServerSettings {
  const t = object(v, path, keysOf<TlsServerConfig>({ cert: true, key: true, ca: true, verifyPeer: true, minVersion: true, handshakeTimeoutMs: true }));
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
  const t = object(v, path, keysOf<TlsClientConfig>({ cert: true, key: true, ca: true, serverName: true, minVersion: true }));
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
