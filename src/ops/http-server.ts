import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { closeFailed, serverTlsOptions, type TlsServerSettings } from '../net/tls-server.ts';
import { readCredentials } from '../net/tls.ts';
import { ListenError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { formatAddress, isLoopback } from '../net/address.ts';
import { evictionVictim } from '../net/eviction.ts';
import { EXPOSITION_TYPE } from './prometheus.ts';
import { present } from '../util/assert.ts';

/** The HTTP listener for metrics and probes (config `"metrics"`, flag `--metrics`). */
export interface MetricsOptions {
  /** Where it listens; port 0 picks a free port. */
  listen: TcpAddress;
  /** Allow a host that is not loopback. Default false. */
  allowRemote: boolean;
  /** Serve HTTPS (with client certificates unless `verifyPeer` is false). */
  tls?: TlsServerSettings | undefined;
}

/**
 * Why the metrics listener may not listen at `address`: a host other
 * machines can reach, without `allowRemote`. Undefined when it may. The one
 * check, made by preflight (`--check-config`, start-up) and again by the
 * listener itself.
 */
export function metricsAddressProblem(address: TcpAddress, allowRemote: boolean): string | undefined {
  if (isLoopback(address.host) || allowRemote) return undefined;
  return `metrics (${formatAddress(address)}): not a loopback address; set allowRemote to expose it`;
}

/** A TCP address: Prometheus and container probes speak HTTP over TCP. */
export interface TcpAddress {
  type: 'tcp';
  host: string;
  port: number;
}

/** What the routes serve; each is called only when its route is asked for. */
export interface OpsHandlers {
  /** `GET /metrics`: the exposition text. */
  metrics(): string;
  /** `GET /readyz`: undefined when QEMU is connected and negotiated, otherwise why not (one line). */
  notReady(): string | undefined;
  /** `GET /status`: JSON text (`query-proxy` and `query-clients`). */
  status(): string;
}

export interface OpsServerOptions {
  /** Where to listen; port 0 picks a free port. */
  address: TcpAddress;
  /** Listen on a host that is not loopback. Default false. */
  allowRemote?: boolean;
  /** Serve HTTPS with these settings (client certificates unless `verifyPeer` is false). */
  tls?: TlsServerSettings | undefined;
  /** A request must have arrived within this, ms. Default 10000. */
  requestTimeoutMs?: number;
  /** Its headers within this, ms. Default 5000. */
  headersTimeoutMs?: number;
  /** A connection with no traffic either way (a client not reading its response) is closed after this, ms. Default 10000. */
  idleTimeoutMs?: number;
  /**
   * Connections at once. One more closes the oldest connection of the peer
   * address holding the most, so a new request (a probe) is served
   * however many connections others hold open. Default 16.
   */
  maxConnections?: number;
  /** Bytes of request headers; more get 431. Default 8192. */
  maxHeaderSize?: number;
  /**
   * A scrape within this long of the last rendering gets the same text, so
   * that scrapes in a tight loop cannot take the proxy's time, ms. Default 200.
   */
  metricsCacheMs?: number;
  /** Where a failing handler is reported. */
  log?: Logger;
}

const ALLOW = 'GET, HEAD';
const TLS_NAMES = { cert: 'metrics tls.cert', key: 'metrics tls.key', ca: 'metrics tls.ca' };
const TEXT = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json; charset=utf-8';

type Reply = [status: number, type: string, body: string];

/**
 * The operations listener: `/metrics` for Prometheus, `/healthz` and
 * `/readyz` for probes, `/status` for people. It only reads the proxy's
 * state when asked, so it costs the data path nothing between scrapes.
 */
export class OpsServer {
  private readonly server: Server;
  private readonly options: OpsServerOptions;
  private bound: TcpAddress | undefined;
  private rendered: { at: number; text: string } | undefined;
  private readonly maxConnections: number;
  /** Open connections, oldest first. */
  private readonly connections = new Set<Socket>();

  constructor(
    private readonly handlers: OpsHandlers,
    options: OpsServerOptions,
  ) {
    this.options = options;
    const requestTimeout = options.requestTimeoutMs ?? 10_000;
    const http: ServerOptions = {
      maxHeaderSize: options.maxHeaderSize ?? 8192,
      requestTimeout,
      headersTimeout: Math.min(options.headersTimeoutMs ?? 5000, requestTimeout),
      // How often the two timeouts above are checked (Node's default, 30 s, would stretch them).
      connectionsCheckingInterval: 1000,
      noDelay: true,
    };
    const { tls } = options;
    this.server = tls ? createHttpsServer({ ...http, ...serverTlsOptions(tls, readCredentials(tls, tls.minVersion, TLS_NAMES)) }) : createServer(http);
    this.server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      const { peer, outcome, detail } = closeFailed(err, socket);
      options.log?.warn('metrics: TLS handshake failed', { client: peer, why: outcome, detail });
    });
    this.server.timeout = options.idleTimeoutMs ?? 10_000;
    this.maxConnections = options.maxConnections ?? 16;
    this.server.on('connection', (socket: Socket) => this.admit(socket));
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => this.handle(req, res));
  }

  /** `https` with TLS, else `http`. */
  get scheme(): 'http' | 'https' {
    return this.options.tls ? 'https' : 'http';
  }

  /**
   * Reads its TLS files again (certificates renewed); throws a TlsError
   * naming the file if one cannot be used. The function it returns gives
   * them to connections from then on.
   */
  renewCredentials(): () => void {
    const { tls } = this.options;
    if (!tls) return () => undefined;
    const fresh = readCredentials(tls, tls.minVersion, TLS_NAMES);
    return () => (this.server as HttpsServer).setSecureContext(fresh);
  }

  /** Where it listens (the real port once started). */
  get address(): TcpAddress {
    return this.bound ?? this.options.address;
  }

  /** Starts listening; resolves with the address bound. */
  async start(): Promise<TcpAddress> {
    const a = this.options.address;
    const problem = metricsAddressProblem(a, this.options.allowRemote ?? false);
    if (problem !== undefined) throw new ListenError(problem);
    await new Promise<void>((resolve, reject) => {
      const failed = (e: Error): void => reject(new ListenError(`metrics: cannot listen on ${formatAddress(a)}: ${e.message}`));
      this.server.once('error', failed);
      this.server.listen(a.port, a.host, () => {
        this.server.off('error', failed);
        resolve();
      });
    });
    // Accept failures (EMFILE...) are reported here; without a listener they would end the process.
    this.server.on('error', (e) => this.options.log?.warn('metrics: listener error', { error: e.message }));
    const port = (this.server.address() as { port: number }).port;
    this.bound = { type: 'tcp', host: a.host, port };
    return this.bound;
  }

  /** Stops listening and closes every connection; resolves when all are closed. */
  stop(): Promise<void> {
    if (!this.server.listening) return Promise.resolve();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /**
   * Takes a new connection; past the limit, makes room by closing the
   * oldest connection of the peer that holds the most. Refusing the new
   * one instead would let anyone who keeps connections open (idle, or
   * sending a header a second) hold a liveness probe out for good.
   */
  private admit(socket: Socket): void {
    this.connections.add(socket);
    socket.once('close', () => this.connections.delete(socket));
    if (this.connections.size <= this.maxConnections) return;
    const oldest = present(evictionVictim(this.connections), 'a connection to close');
    this.connections.delete(oldest);
    oldest.destroy();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    // One answer per connection: a kept-alive connection would hold a place that a probe may need.
    res.setHeader('Connection', 'close');
    const path = (req.url ?? '').split('?', 1)[0];
    const route = this.route(path);
    if (!route) return send(req, res, [404, TEXT, 'not found\n']);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', ALLOW);
      return send(req, res, [405, TEXT, `${req.method ?? ''} is not allowed; use GET or HEAD\n`]);
    }
    let reply: Reply;
    try {
      reply = route();
    } catch (e) {
      this.options.log?.error('metrics: a route failed', { path, error: (e as Error).message });
      reply = [500, TEXT, 'internal error\n'];
    }
    send(req, res, reply);
  }

  private route(path: string | undefined): (() => Reply) | undefined {
    switch (path) {
      case '/metrics':
        return () => [200, EXPOSITION_TYPE, this.exposition()];
      case '/healthz':
        return () => [200, TEXT, 'ok\n'];
      case '/readyz':
        return () => {
          const why = this.handlers.notReady();
          return why === undefined ? [200, TEXT, 'ready\n'] : [503, TEXT, `not ready: ${why}\n`];
        };
      case '/status':
        return () => [200, JSON_TYPE, this.handlers.status() + '\n'];
      default:
        return undefined;
    }
  }

  private exposition(): string {
    const now = performance.now();
    const cacheMs = this.options.metricsCacheMs ?? 200;
    if (this.rendered && now - this.rendered.at < cacheMs) return this.rendered.text;
    const text = this.handlers.metrics();
    this.rendered = { at: now, text };
    return text;
  }
}

function send(req: IncomingMessage, res: ServerResponse, [status, type, body]: Reply): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : body);
}
