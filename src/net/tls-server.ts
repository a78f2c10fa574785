import type { Server, Socket } from 'node:net';
import { createServer, type SecureContextOptions, type Server as TlsServer, type TlsOptions, type TLSSocket } from 'node:tls';
import { evictionVictim } from './eviction.ts';
import { DEFAULT_MIN_TLS_VERSION, readCredentials, type TlsFileNames, type TlsVersion } from './tls.ts';

/** A TLS listener's settings: an endpoint's `tls`, or the metrics listener's. */
export interface TlsServerSettings {
  /** The server's certificate (then any intermediates), PEM. */
  cert: string;
  /** Its private key, PEM, unencrypted. */
  key: string;
  /** The CA certificates a client certificate must chain to, PEM; needed when `verifyPeer`. */
  ca: string | undefined;
  /** Require a client certificate that chains to `ca` (QEMU's `verify-peer`). Default true. */
  verifyPeer: boolean;
  /** The oldest protocol accepted. Default TLSv1.2. */
  minVersion: TlsVersion;
  /** A connection that has not finished its handshake this long after connecting is closed, ms. Default 10000. */
  handshakeTimeoutMs: number;
}

export const TLS_SERVER_DEFAULTS = Object.freeze({
  verifyPeer: true,
  minVersion: DEFAULT_MIN_TLS_VERSION,
  /** A TLS client sends its hello as soon as it connects: 10 s is a slow network, not a slow client. */
  handshakeTimeoutMs: 10_000,
});

/**
 * How a handshake ended: `ok`, or why it failed. A client certificate that
 * Node does not verify is `no-certificate`, `untrusted` (no chain to the
 * CA, or not a client certificate), `expired` or `not-yet-valid`; the rest
 * are the connection's: `timeout`, `evicted` (too many handshakes at once),
 * `protocol` (not TLS, or a version or cipher refused), `closed` (by the
 * peer), `other`.
 */
export const HANDSHAKE_OUTCOMES = ['ok', 'no-certificate', 'untrusted', 'expired', 'not-yet-valid', 'timeout', 'evicted', 'protocol', 'closed', 'other'] as const;
export type HandshakeOutcome = (typeof HANDSHAKE_OUTCOMES)[number];

export interface HandshakeReport {
  /** The client's address, `HOST:PORT`. */
  peer: string;
  outcome: HandshakeOutcome;
  /** Node's or OpenSSL's code for a failure (`CERT_HAS_EXPIRED`, `ERR_SSL_WRONG_VERSION_NUMBER`...). */
  detail: string | undefined;
}

/** Why a handshake failed, from Node's error and the certificate verification's (`tlsSocket.authorizationError`). */
export function handshakeFailure(code: string | undefined, authorizationError: string | undefined): Exclude<HandshakeOutcome, 'ok' | 'evicted'> {
  if (authorizationError === 'CERT_HAS_EXPIRED') return 'expired';
  if (authorizationError === 'CERT_NOT_YET_VALID') return 'not-yet-valid';
  if (authorizationError !== undefined) return 'untrusted';
  if (code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') return 'no-certificate';
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'timeout';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'closed';
  if (code?.startsWith('ERR_SSL_')) return 'protocol';
  return 'other';
}

/** What a TLS server is made with, besides its credentials. */
export function serverTlsOptions(settings: TlsServerSettings, credentials: SecureContextOptions): TlsOptions {
  return {
    ...credentials,
    requestCert: settings.verifyPeer,
    rejectUnauthorized: settings.verifyPeer,
    handshakeTimeout: settings.handshakeTimeoutMs,
  };
}

export interface TlsTerminatorOptions {
  settings: TlsServerSettings;
  /** What the files are called in error messages. */
  names: TlsFileNames;
  /**
   * Handshakes under way at once; one more closes the oldest of the peer
   * address holding the most, so a flood of connections that never finish
   * (from one address) keeps nobody else out.
   */
  maxHandshakes(): number;
  /** Told how each handshake ended. */
  onHandshake(report: HandshakeReport): void;
}

/** A connection whose handshake is under way. */
interface Handshake {
  readonly peer: string;
  evicted: boolean;
}

/**
 * TLS in front of a listener, with Node's `tls` doing all of TLS: the
 * certificate verification (client certificates required by default), the
 * handshake timeout, the protocol floor. It bounds the handshakes under
 * way, closes a connection whose handshake failed or timed out, reports
 * how each ended, and hands on connections, paused, once secure. The
 * credentials are read once, at construction, and again by `reload`:
 * every server it made then takes them for new connections, connected
 * clients stay.
 */
export class TlsTerminator {
  private settings: TlsServerSettings;
  private credentials: SecureContextOptions;
  private readonly servers = new Set<TlsServer>();
  /** Connections whose handshake is under way, on every server made. */
  private readonly underway = new Map<Socket, Handshake>();

  /** Reads the credentials; throws a TlsError naming the file. */
  constructor(private readonly options: TlsTerminatorOptions) {
    this.settings = options.settings;
    this.credentials = readCredentials(this.settings, this.settings.minVersion, options.names);
  }

  /** A server that calls `onSecure` with each connection that completed its handshake. */
  server(onSecure: (socket: Socket) => void): Server {
    const { onHandshake, maxHandshakes } = this.options;
    const server = createServer({ ...serverTlsOptions(this.settings, this.credentials), allowHalfOpen: true, pauseOnConnect: true });
    const { underway } = this;
    // What is known of every connection, kept while it is (its close may come before its failure is told).
    const known = new WeakMap<Socket, Handshake>();
    server.on('connection', (raw: Socket) => {
      const handshake = { peer: `${raw.remoteAddress}:${raw.remotePort}`, evicted: false };
      underway.set(raw, handshake);
      known.set(raw, handshake);
      raw.once('close', () => underway.delete(raw));
      if (underway.size > maxHandshakes()) evict(underway);
    });
    server.on('secureConnection', (socket: TLSSocket) => {
      // Its TCP connection, by address: only one open connection has it.
      for (const raw of underway.keys()) if (raw.remotePort === socket.remotePort && raw.remoteAddress === socket.remoteAddress) underway.delete(raw);
      socket.pause();
      onHandshake({ peer: `${socket.remoteAddress}:${socket.remotePort}`, outcome: 'ok', detail: undefined });
      onSecure(socket);
    });
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      const failed = closeFailed(err, socket);
      const raw = parentOf(socket);
      if (raw) underway.delete(raw);
      const handshake = raw && known.get(raw);
      onHandshake({ peer: handshake?.peer ?? failed.peer, outcome: handshake?.evicted ? 'evicted' : failed.outcome, detail: failed.detail });
    });
    server.once('close', () => this.servers.delete(server));
    this.servers.add(server);
    return server;
  }

  /** Handshakes under way now. */
  get handshakes(): number {
    return this.underway.size;
  }

  /**
   * Reads the files again (those of `settings`, when a reload names other
   * files or another protocol floor); throws a TlsError naming the file if
   * one cannot be used. Resolves nothing yet: the function it returns gives
   * every server made the new credentials, for the connections that come
   * next, so a reload reads every file before it changes anything.
   */
  renew(settings: TlsServerSettings = this.settings): () => void {
    const fresh = readCredentials(settings, settings.minVersion, this.options.names);
    return () => {
      this.settings = settings;
      this.credentials = fresh;
      for (const server of this.servers) server.setSecureContext(fresh);
    };
  }
}

/**
 * Closes a connection whose handshake failed (Node closes one whose
 * certificate it refused, but not one whose handshake timed out), and
 * says how it failed and, when that can still be told, who it was.
 */
export function closeFailed(err: NodeJS.ErrnoException, socket: TLSSocket): HandshakeReport {
  socket.destroy();
  const refused = verificationError(socket);
  const raw = parentOf(socket);
  const peer = raw?.remoteAddress === undefined ? 'unknown' : `${raw.remoteAddress}:${raw.remotePort}`;
  return { peer, outcome: handshakeFailure(err.code, refused), detail: refused ?? err.code ?? err.message };
}

/**
 * The TCP connection a server-side TLS socket runs over. Node passes the
 * TLS socket of a failed handshake already closed, when its address can no
 * longer be read; its connection still says who it was.
 */
function parentOf(socket: TLSSocket): Socket | undefined {
  const parent = (socket as { _parent?: unknown })._parent;
  return parent !== null && typeof parent === 'object' ? (parent as Socket) : undefined;
}

/** Why Node refused the peer's certificate (a code such as `CERT_HAS_EXPIRED`), if it did. */
function verificationError(socket: TLSSocket): string | undefined {
  // Typed as an Error, set by Node as the code alone.
  const error: unknown = socket.authorizationError;
  if (typeof error === 'string') return error;
  return error instanceof Error ? ((error as NodeJS.ErrnoException).code ?? error.message) : undefined;
}

/** Closes the oldest handshake of the address with the most under way. */
function evict(handshakes: Map<Socket, Handshake>): void {
  const victim = evictionVictim(handshakes.keys());
  if (!victim) return;
  const handshake = handshakes.get(victim);
  if (handshake) handshake.evicted = true;
  victim.destroy();
}
