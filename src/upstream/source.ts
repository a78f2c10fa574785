import type { Socket } from 'node:net';
import type { Endpoint } from '../downstream/endpoint.ts';
import type { Address } from '../net/address.ts';

/** What a SIGTERM/SIGINT to qmp-mux does to a QEMU it started. */
export type StopPolicy = 'quit' | 'powerdown' | 'leave';

/** Where QEMU is. */
export type UpstreamOptions =
  /** Dial QEMU's QMP server socket, retrying with backoff. */
  | {
      mode: 'connect';
      address: Address;
      /** Move QEMU's unix socket aside and serve clients at its path (see README). */
      takeover: boolean;
    }
  /** Listen; QEMU connects (`-chardev socket,...,reconnect=1`). */
  | { mode: 'listen'; address: Address }
  /** Start QEMU with these arguments plus a private QMP socket. */
  | {
      mode: 'spawn';
      command: string[];
      onStop: StopPolicy;
      /** With `powerdown`: how long the guest gets before `quit`, ms. */
      powerdownTimeoutMs: number;
    };

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
