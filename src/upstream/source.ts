import type { Socket } from 'node:net';
import type { Options } from '../config/options.ts';
import type { Endpoint } from '../downstream/endpoint.ts';
import type { Logger } from '../log.ts';
import { Dialer } from './dial-source.ts';
import { ListenSource } from './listen-source.ts';
import { SpawnSource, type QemuExit } from './spawn-source.ts';
import { TakeoverSource } from './takeover.ts';

/** Sends a command of qmp-mux's own to QEMU; resolves with the reply, or undefined if QEMU is not there. */
export type AskQemu = (command: string) => Promise<Buffer | undefined>;

/** Where upstream connections come from: dialing QEMU, QEMU dialing in, or a QEMU qmp-mux runs. */
export interface UpstreamSource {
  /** How QEMU is reached, for logs and `query-proxy`. */
  readonly mode: 'connect' | 'listen' | 'spawn';
  /** Endpoints the source needs served besides the configured ones (a takeover serves QEMU's path). */
  readonly endpoints: readonly Endpoint[];
  /** Prepares, before any endpoint listens; what cannot be done is a start-up error. */
  open(): Promise<void>;
  /** Begins producing connections for `onSocket`; resolves once it is under way (a spawned QEMU is running). */
  start(onSocket: (socket: Socket) => void): Promise<void>;
  /** The connection became usable (QEMU greeted and negotiated). */
  ready(): void;
  /** The last connection is gone; produce another. */
  lost(): void;
  /** Stops producing connections, deals with a QEMU it started (using `ask`), and undoes what `open` did. */
  stop(ask: AskQemu): Promise<void>;
  /** The last resort when stopping cannot wait: ends what it started at once, without waiting for anything. */
  abort(): void;
}

export interface SourceContext {
  log: Logger;
  /** A QEMU qmp-mux started has exited. */
  onQemuExit: (exit: QemuExit) => void;
}

/** The source `options` ask for. */
export function createSource(options: Options, context: SourceContext): UpstreamSource {
  const u = options.upstream;
  const { log } = context;
  switch (u.mode) {
    case 'connect':
      if (u.takeover && u.address.type === 'unix') return new TakeoverSource({ path: u.address.path, backoff: options.backoff, log });
      return new Dialer({ address: u.address, backoff: options.backoff, log });
    case 'listen':
      return new ListenSource({ address: u.address, log });
    case 'spawn':
      return new SpawnSource({ ...u, log, onExit: context.onQemuExit });
  }
}
