import type { Socket } from 'node:net';

/**
 * Writes to a socket, gathering everything written in one tick of the event
 * loop into a single writev: one system call and one wake-up of the reader
 * per tick instead of one per message.
 */
export class TickWriter {
  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  constructor(private readonly socket: Socket) {}

  write(data: string | Buffer): void {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    this.socket.write(data);
  }
}
