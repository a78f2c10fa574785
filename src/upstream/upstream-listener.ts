import type { Server, Socket } from 'node:net';
import { closeListener, listen } from '../downstream/listener.ts';
import type { Logger } from '../log.ts';
import { formatAddress, type Address } from '../net/address.ts';
import type { UpstreamSource } from './dialer.ts';

/**
 * Listen mode: qmp-mux listens and QEMU connects
 * (`-chardev socket,id=mon0,path=PATH,reconnect=1 -mon chardev=mon0,mode=control`),
 * so either side can restart first. One QEMU at a time; another trying to
 * attach meanwhile is turned away.
 */
export class UpstreamListener implements UpstreamSource {
  private server: Server | undefined;
  private attached: Socket | undefined;
  private onSocket: ((socket: Socket) => void) | undefined;
  private stopped = false;

  constructor(
    private readonly address: Address,
    private readonly log: Logger,
  ) {}

  /** Listens; resolves once listening (errors are start-up errors). */
  async open(): Promise<void> {
    this.server = await listen(this.address, (socket) => this.accept(socket));
    this.log.info('waiting for QEMU to connect', { upstream: `listen:${formatAddress(this.address)}` });
  }

  start(onSocket: (socket: Socket) => void): void {
    this.onSocket = onSocket;
  }

  ready(): void {}

  lost(): void {
    this.attached = undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.attached?.destroy();
    if (this.server) await closeListener(this.server, this.address);
  }

  private accept(socket: Socket): void {
    if (this.stopped || this.attached || !this.onSocket) {
      const why = this.attached ? 'one is already attached' : this.stopped ? 'qmp-mux is stopping' : 'qmp-mux is still starting';
      this.log.warn(`refused a QEMU connection: ${why}`, { upstream: `listen:${formatAddress(this.address)}` });
      socket.destroy();
      return;
    }
    this.attached = socket;
    socket.resume();
    this.onSocket(socket);
  }
}
