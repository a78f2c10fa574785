import type { Socket } from 'node:net';
import type { Logger } from '../log.ts';
import type { SocketFlusher } from '../net/socket-writer.ts';
import type { QemuSide } from '../qmp/monitor-session.ts';
import type { Access } from './access.ts';
import type { Endpoint } from './endpoint.ts';
import type { CertificateNames } from './identity.ts';

/**
 * Where a client connection is: `waiting` for QEMU to greet it; `open`;
 * `draining` (no more input is read; replies still owed go out); `closing`
 * (qmp-mux ended it: the socket is being shut and will be destroyed within
 * the linger time); `closed`.
 */
export type ClientState = 'waiting' | 'open' | 'draining' | 'closing' | 'closed';

/** Where a greeted client's commands go (the mux's command router for it). */
export interface CommandRoute extends QemuSide {
  /** Commands it passed on to QEMU. */
  readonly commandsSent: number;
  /** Its commands refused by a policy. */
  readonly refused: number;
  /**
   * Whether the client holds as much input as it may, `held` bytes of a
   * message still being sent included; if so, its `room` is called once
   * commands have gone on.
   */
  holdsTooMuch(held: number): boolean;
  /** The client is gone: what it has queued is dropped. */
  close(): void;
}

/** Bytes in and out, counted for the endpoint. */
export interface ConnectionCounters {
  bytesIn(n: number): void;
  bytesOut(n: number): void;
}

/** What a client connection is made with. */
export interface ClientConnectionOptions {
  socket: Socket;
  endpoint: Endpoint;
  /** What it may do and receive: its endpoint's, or its identity's. */
  access: Access;
  /** Its certificate, verified (TLS endpoints with client certificates). */
  certificate: CertificateNames | undefined;
  /** Unique number, for the client list and log lines. */
  number: number;
  /** Peer description, for logs. */
  peer: string;
  log: Logger;
  flusher: SocketFlusher;
  counters: ConnectionCounters;
  /** How long a connection qmp-mux has ended may take to close before it is destroyed, ms. */
  lingerMs: number;
  /** It negotiated: it takes events from now on. */
  onNegotiated(): void;
  /** The connection is gone; called once. */
  onClosed(): void;
}
