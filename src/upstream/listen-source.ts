import type { Socket } from 'node:net';
import type { Endpoint } from '../downstream/endpoint.ts';
import type { Logger } from '../log.ts';
import { formatAddress, type Address } from '../net/address.ts';
import { Listener } from '../net/unix-socket.ts';
import type { UpstreamSource } from './source.ts';

export interface ListenSourceOptions {
  address: Address;
  log: Logger;
}

/**
 * Listen mode: qmp-mux listens and QEMU connects
 * (`-chardev socket,id=mon0,path=PATH,reconnect=1 -mon chardev=mon0,mode=control`),
 * so either side can restart first. One QEMU at a time; another trying to
 * attach meanwhile is turned away.
 */
export class ListenSource implements UpstreamSource {
  readonly mode = 'listen';
  readonly endpoints: readonly Endpoint[] = [];
  private listener: Listener | undefined;
  private attached: Socket | undefined;
  private onSocket: ((socket: Socket) => void) | undefined;
  private stopped = false;
  /** Whether a QEMU was turned away while this one is attached: a second QEMU with `reconnect=1` retries every second, for ever. */
  private refusedWhileAttached = false;

  constructor(private readonly options: ListenSourceOptions) {}

  /** Listens; failing to is a start-up error. */
  async open(): Promise<void> {
    const { address, log } = this.options;
    this.listener = await Listener.open(address, (socket) => this.accept(socket), {
      onError: (err) => log.warn('cannot accept QEMU\'s connection', { upstream: this.where, error: err.message }),
    });
    log.info('waiting for QEMU to connect', { upstream: this.where });
  }

  start(onSocket: (socket: Socket) => void): Promise<void> {
    this.onSocket = onSocket;
    return Promise.resolve();
  }

  ready(): void {}

  lost(): void {
    this.attached = undefined;
    this.refusedWhileAttached = false;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.attached?.destroy();
    await this.listener?.close();
  }

  abort(): void {}

  private get where(): string {
    return `listen:${formatAddress(this.options.address)}`;
  }

  private accept(socket: Socket): void {
    if (this.stopped || this.attached || !this.onSocket) {
      const why = this.attached ? 'one is already attached' : this.stopped ? 'qmp-mux is stopping' : 'qmp-mux is still starting';
      if (this.attached && this.refusedWhileAttached) this.options.log.debug(`refused a QEMU connection: ${why}`, { upstream: this.where });
      else this.options.log.warn(`refused a QEMU connection: ${why}${this.attached ? ' (further ones are logged at debug level while it stays)' : ''}`, { upstream: this.where });
      this.refusedWhileAttached ||= this.attached !== undefined;
      socket.destroy();
      return;
    }
    this.attached = socket;
    socket.resume();
    this.onSocket(socket);
  }
}
