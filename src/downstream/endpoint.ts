import { lstat } from 'node:fs/promises';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Access } from './access.ts';
import { remoteProblem, type EndpointOptions } from './endpoint-options.ts';
import { certificateMatcher, certificateNames, parseCondition, type CertificateCondition, type CertificateNames } from './identity.ts';
import { ConfigError, ListenError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { formatAddress, type Address } from '../net/address.ts';
import { listenInherited, type InheritedSocket } from '../net/systemd.ts';
import { TlsTerminator, type HandshakeReport } from '../net/tls-server.ts';
import { Listener, type ServerMaker } from '../net/unix-socket.ts';

/** What a client connecting to an endpoint gets: its access, or a refusal (a QMP error, then the connection closes). */
export type Admission =
  | { readonly access: Access; readonly certificate: CertificateNames | undefined }
  | { readonly refused: string; readonly certificate: CertificateNames };

/** An identity rule, compiled. */
interface Identity {
  readonly access: Access;
  readonly matches: (names: CertificateNames) => boolean;
}

/** What an endpoint tells the mux of, once listening. */
export interface EndpointEvents {
  /** A client connected (with TLS: once its handshake is done). */
  connection(socket: Socket): void;
  /** An error once listening (running out of file descriptors, say). */
  error(err: NodeJS.ErrnoException): void;
  /** A TLS handshake ended, well or not. */
  handshake(report: HandshakeReport): void;
}

/**
 * Where clients connect: a listener with its options, TLS in front of it
 * if it has any, and what its clients may do: its own access, or, by their
 * certificate, that of an identity.
 */
export class Endpoint {
  /** What its clients may do, unless an identity says otherwise. */
  access!: Access;
  private identities: readonly Identity[] = [];
  private listener: Listener | undefined;
  private events: EndpointEvents | undefined;
  private tls: TlsTerminator | undefined;

  constructor(
    /** Its options; a reload replaces them (see `update`). */
    public options: EndpointOptions,
    /** The socket systemd passed for it, used instead of its own address. */
    readonly inherited?: InheritedSocket,
  ) {
    this.compile();
  }

  get name(): string {
    return this.options.name;
  }

  /** Whether it is listening (between `listen` and `close`). */
  get listening(): boolean {
    return this.listener !== undefined;
  }

  /** Where it listens (the real port once bound). */
  get address(): Address {
    return this.listener?.address ?? this.options.address;
  }

  /** Listens; reads its TLS credentials first (a TlsError names the file). */
  async listen(events: EndpointEvents): Promise<void> {
    this.events = events;
    const { tls } = this.options;
    if (tls) {
      const field = `endpoint '${this.name}' tls`;
      this.tls = new TlsTerminator({
        settings: tls,
        names: { cert: `${field}.cert`, key: `${field}.key`, ca: `${field}.ca` },
        maxHandshakes: () => this.options.maxClients,
        onHandshake: (report) => this.events?.handshake(report),
      });
    }
    const onConnection = (socket: Socket): void => this.events?.connection(socket);
    const onError = (err: NodeJS.ErrnoException): void => this.events?.error(err);
    if (!this.inherited) {
      this.listener = await Listener.open(this.options.address, onConnection, { socket: this.options.socket, onError, ...this.maker() });
      return;
    }
    const { server, address } = await listenInherited(this.inherited, this.options.address, onConnection, this.maker().makeServer);
    const remote = remoteProblem(this.options, address);
    if (remote !== undefined) {
      server.close();
      throw new ListenError(`endpoint '${this.name}' (${formatAddress(address)}, the socket systemd passed as fd ${this.inherited.fd}): ${remote}`);
    }
    this.listener = Listener.adopt(server, address, { onError });
  }

  /**
   * What a client that just connected may do: the endpoint's access; with
   * identities, that of the first whose conditions its certificate meets,
   * or a refusal if it meets none.
   */
  admit(socket: Socket): Admission {
    if (!this.options.tls?.verifyPeer) return { access: this.access, certificate: undefined };
    const peer = (socket as TLSSocket).getPeerCertificate();
    return this.accessFor(certificateNames(peer));
  }

  /** The access a certificate gives (a reload asks again for each connected client). */
  accessFor(certificate: CertificateNames | undefined): Admission {
    if (!certificate || this.identities.length === 0) return { access: this.access, certificate };
    const identity = this.identities.find((i) => i.matches(certificate));
    if (!identity) return { refused: `No identity of endpoint '${this.name}' matches the certificate of ${certificate.subject || 'an empty subject'}`, certificate };
    return { access: identity.access, certificate };
  }

  /**
   * Takes the options a reload gave it: a new access and identities (the
   * mux gives its clients theirs); a new address or socket mode is
   * listened on anew, and clients connected at the old one stay. Rejects,
   * changing nothing, if it cannot listen there.
   */
  async update(options: EndpointOptions): Promise<void> {
    const moved = JSON.stringify([options.address, options.socket]) !== JSON.stringify([this.options.address, this.options.socket]);
    if (moved && this.listener && !this.inherited && this.events) {
      const events = this.events;
      const fresh = await Listener.open(options.address, (socket) => events.connection(socket), { socket: options.socket, onError: (err) => events.error(err), ...this.maker() });
      const old = this.listener;
      this.listener = fresh;
      await old.close();
    }
    this.options = options;
    this.compile();
  }

  /**
   * Reads the TLS files of `options` (a reload's, certificates renewed);
   * throws a TlsError naming the file if one cannot be used. The function
   * it returns gives them to connections from then on; connected clients
   * stay. Undefined without TLS.
   */
  renewCredentials(options: EndpointOptions): (() => void) | undefined {
    return this.tls && options.tls && this.tls.renew(options.tls);
  }

  /** Whether its unix socket file is still the one it created. */
  async ownsSocketFile(): Promise<boolean> {
    return (await this.listener?.ownsSocketFile()) ?? false;
  }

  /** Listens anew at its address (its socket file was taken away); connected clients stay. */
  async relisten(): Promise<void> {
    const old = this.listener;
    const events = this.events;
    if (!old || !events) return;
    const fresh = await Listener.open(this.options.address, (socket) => events.connection(socket), { socket: this.options.socket, onError: (err) => events.error(err), ...this.maker() });
    if (this.listener !== old) {
      // Closed meanwhile: qmp-mux is stopping.
      await fresh.close();
      return;
    }
    old.server.close();
    this.listener = fresh;
  }

  /**
   * Listens anew if its unix socket file was removed since (by hand, by a
   * cleaner of temporary files): clients could not reach it otherwise, and
   * a reload is how an operator says so. Anything else at its path now is
   * not its to replace. Logs what it did; failing is not the reload's
   * failure.
   */
  async restoreSocketFile(log: Logger): Promise<void> {
    const { address } = this.options;
    if (address.type !== 'unix' || !this.listener || this.inherited) return;
    if (await lstat(address.path).catch(() => undefined)) return;
    try {
      await this.relisten();
      log.warn('its socket file had been removed; listening there anew', { endpoint: this.name, address: formatAddress(address) });
    } catch (e) {
      log.error('its socket file had been removed, and cannot be made again', { endpoint: this.name, address: formatAddress(address), error: (e as Error).message });
    }
  }

  /** Stops accepting; removes the unix socket file it made. */
  async close(): Promise<void> {
    const listener = this.listener;
    this.listener = undefined;
    await listener?.close();
  }

  /** The server its listener needs: a TLS one when it has TLS. */
  private maker(): { makeServer?: ServerMaker } {
    const tls = this.tls;
    return tls ? { makeServer: (onConnection) => tls.server(onConnection) } : {};
  }

  private compile(): void {
    const { options } = this;
    this.access = new Access(options, options.eventSequence, undefined);
    this.identities = options.identities.map((rule) => ({
      access: new Access(rule, options.eventSequence, rule.name),
      matches: certificateMatcher(rule.match.map((text) => condition(rule.name, text))),
    }));
  }
}

function condition(identity: string, text: string): CertificateCondition {
  const parsed = parseCondition(text);
  if (typeof parsed === 'string') throw new ConfigError(`identity '${identity}': ${parsed}`);
  return parsed;
}
