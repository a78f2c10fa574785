import { QEMU_JSON_LIMITS } from '../json/streamer.ts';
import { isLoopback, type Address } from '../net/address.ts';
import type { TlsServerSettings } from '../net/tls-server.ts';
import type { SocketOptions } from '../net/unix-socket.ts';
import type { PolicyOptions } from '../policy/policy.ts';
import { copyPolicy, POLICY_PRESETS } from '../policy/presets.ts';

export interface LimitOptions {
  /**
   * Bytes of one client message (token text), as QEMU counts them: past it
   * the client gets QEMU's own limit error. At most QEMU's 64 MiB. It bounds
   * what a message still being sent holds in qmp-mux.
   */
  maxMessageSize: number;
  /** Tokens in one client message; QEMU's 2 Mi by default. */
  maxTokens: number;
  /** Nesting of one client message; QEMU's 1024 by default (and at most). */
  maxNesting: number;
  /** Requests of one client not yet answered before qmp-mux stops reading from it. */
  maxPendingRequests: number;
  /** Bytes written to one client and not yet taken by it before the client is disconnected. */
  maxOutputBuffer: number;
  /**
   * Bytes of one command as qmp-mux sends it to QEMU. QEMU reads its monitor
   * one byte per system call and reads nothing else meanwhile, so a
   * command's bytes are time every other client waits; larger commands are
   * refused.
   */
  maxCommandBytes: number;
  /**
   * Bytes of one client's input qmp-mux holds: its commands waiting for
   * their turn to QEMU, plus a message still being sent. Past it the client
   * is not read until its commands have gone to QEMU.
   */
  maxInputBytes: number;
}

export interface EndpointOptions {
  /** Shown in logs and in the client list. */
  name: string;
  address: Address;
  /** For unix sockets. */
  socket: SocketOptions;
  /** A TCP endpoint on a non-loopback address is refused unless this is set. */
  allowRemote: boolean;
  policy: PolicyOptions;
  /** Glob patterns of event names this endpoint's clients receive. */
  events: string[];
  /** Clients connected at once; beyond, a new client gets an error and is closed. */
  maxClients: number;
  limits: LimitOptions;
  /** A client that has not negotiated this long after its greeting is closed, ms; 0 never. */
  negotiationTimeoutMs: number;
  /** Add the journal's sequence number to each live event this endpoint's clients receive. */
  eventSequence: boolean;
  /** What this endpoint's commands do when another client's lock holds them back: wait for it to end, or be refused. */
  whenLocked: WhenLocked;
  /** TCP endpoints: clients connect with TLS (certificates required unless `verifyPeer` is false). */
  tls: TlsServerSettings | undefined;
  /**
   * With `tls`: rules giving clients by their certificate a policy, events
   * and limits of their own, the first that matches; a certificate that
   * matches none is refused. None: every client has the endpoint's.
   */
  identities: IdentityOptions[];
}

/** What a client may do and receive: its endpoint's, or its identity's. */
export type AccessOptions = Pick<EndpointOptions, 'policy' | 'events' | 'limits' | 'maxClients'>;

/** An identity: the clients whose certificate matches, and what they may do instead of what the endpoint says. */
export interface IdentityOptions extends AccessOptions {
  /** Shown in logs, `query-clients`, the audit log and the metrics. */
  name: string;
  /** Conditions the certificate must all meet: `CN=GLOB` (any subject attribute), `DNS:GLOB`, `email:GLOB`, `URI:GLOB`, `IP:GLOB`. */
  match: string[];
}

export const WHEN_LOCKED = ['wait', 'refuse'] as const;
export type WhenLocked = (typeof WHEN_LOCKED)[number];

/**
 * A command's bytes are paid by every client queued behind it (about
 * 1 s for 64 KiB where QEMU reads 14 µs a byte); no QMP command needs
 * more. A message four times that size could hardly make a command that
 * fits, so qmp-mux does not hold one: a message still being sent costs
 * up to about 64 times its size (the value parsed so far, see memory.ts).
 */
export const LIMIT_DEFAULTS: Readonly<LimitOptions> = Object.freeze({
  ...QEMU_JSON_LIMITS,
  maxMessageSize: 256 * 1024,
  maxPendingRequests: 256,
  maxOutputBuffer: 16 * 1024 * 1024,
  maxCommandBytes: 64 * 1024,
  maxInputBytes: 1024 * 1024,
});
export const ENDPOINT_DEFAULTS = Object.freeze({
  socketMode: 0o600,
  allowRemote: false,
  maxClients: 64,
  /**
   * A connection that has not negotiated after 30 s is closed: clients
   * negotiate as soon as they are greeted, and 30 s leaves a person
   * typing `qmp_capabilities` into socat time to, while a connection that
   * sends nothing gives its place on the endpoint back.
   */
  negotiationTimeoutMs: 30_000,
  eventSequence: false,
  /**
   * A tool that knows nothing of locks then sees only a slower QEMU (as
   * while QEMU runs a long command), never an error QEMU would not send;
   * its commands keep their order, and the lease bounds the wait on a
   * holder that hangs.
   */
  whenLocked: 'wait' as WhenLocked,
});

/**
 * Limits for endpoints whose policy is the `read-only` preset: their
 * clients send queries, which are small. QEMU reads a 2 KiB command in
 * about 30 ms where it reads 14 µs a byte (the slowest machine measured).
 */
export const READ_ONLY_LIMITS: Readonly<Pick<LimitOptions, 'maxCommandBytes' | 'maxMessageSize' | 'maxInputBytes'>> = Object.freeze({
  maxCommandBytes: 2 * 1024,
  maxMessageSize: 16 * 1024,
  maxInputBytes: 64 * 1024,
});

/** An endpoint with every default, at `address`. */
export function defaultEndpoint(name: string, address: Address): EndpointOptions {
  return {
    name,
    address,
    socket: { mode: ENDPOINT_DEFAULTS.socketMode, owner: undefined, group: undefined },
    allowRemote: ENDPOINT_DEFAULTS.allowRemote,
    policy: copyPolicy(POLICY_PRESETS.all),
    events: ['*'],
    maxClients: ENDPOINT_DEFAULTS.maxClients,
    limits: { ...LIMIT_DEFAULTS },
    negotiationTimeoutMs: ENDPOINT_DEFAULTS.negotiationTimeoutMs,
    eventSequence: ENDPOINT_DEFAULTS.eventSequence,
    whenLocked: ENDPOINT_DEFAULTS.whenLocked,
    tls: undefined,
    identities: [],
  };
}

/**
 * Why clients may not be served at `address` for `endpoint`: a TCP address
 * others can reach, unless the endpoint allows remote clients. Undefined
 * when they may (`exposure` says whether that is wise).
 */
export function remoteProblem(endpoint: EndpointOptions, address: Address): string | undefined {
  if (address.type !== 'tcp' || isLoopback(address.host) || endpoint.allowRemote) return undefined;
  if (verifiesClients(endpoint)) return 'not a loopback address; set allowRemote to expose it (its clients must present a certificate)';
  const who = endpoint.tls ? 'TLS without client certificates (verifyPeer false)' : 'QMP';
  return `not a loopback address, and ${who} authenticates no one: give the endpoint tls with client certificates and set allowRemote (allowRemote alone exposes it to anyone who can reach it)`;
}

/** Whether the endpoint knows who its clients are: TLS with client certificates. */
export function verifiesClients(endpoint: Pick<EndpointOptions, 'tls'>): boolean {
  return endpoint.tls?.verifyPeer === true;
}

/**
 * What is worth a warning about where `endpoint` listens: a TCP address
 * others can reach (with allowRemote) where clients are not verified.
 */
export function exposure(endpoint: EndpointOptions): string | undefined {
  const a = endpoint.address;
  if (a.type !== 'tcp' || isLoopback(a.host) || verifiesClients(endpoint)) return undefined;
  const how = endpoint.tls ? 'TLS without client certificates (verifyPeer is false)' : 'plaintext QMP';
  return `listens beyond loopback with ${how}: anyone who can reach it controls the VM; give it tls with client certificates (README, Remote access)`;
}
