import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../log.ts';
import { Dialer, type UpstreamSource } from './dialer.ts';

export interface QemuExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Runs QEMU as a child with a private QMP socket added to its arguments,
 * and dials that socket. QEMU's stdout and stderr are qmp-mux's.
 */
export class QemuProcess implements UpstreamSource {
  private child: ChildProcess | undefined;
  private readonly dir: string;
  private readonly dialer: Dialer;
  private exited: Promise<QemuExit> | undefined;

  constructor(
    private readonly command: readonly string[],
    private readonly log: Logger,
    private readonly onExit: (exit: QemuExit) => void,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), 'qmp-mux-'));
    // QEMU creates its socket within a few ms of starting: dial eagerly, and
    // only a QEMU that takes seconds to get there is worth a warning.
    this.dialer = new Dialer({ type: 'unix', path: this.socketPath }, { initialMs: 5, maxMs: 200 }, log, 3000);
  }

  get socketPath(): string {
    return join(this.dir, 'qmp.sock');
  }

  start(onSocket: (socket: Socket) => void): void {
    const [program, ...args] = this.command;
    if (program === undefined) throw new Error('no QEMU command given');
    args.push('-qmp', `unix:${this.socketPath},server=on,wait=off`);
    const child = spawn(program, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    this.child = child;
    this.exited = new Promise((resolve) => {
      child.once('error', (err) => {
        this.log.error('cannot start QEMU', { command: program, error: err.message });
        resolve({ code: 127, signal: null });
      });
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    void this.exited.then((exit) => {
      this.child = undefined;
      void this.dialer.stop();
      this.log.info('QEMU exited', { pid: child.pid, code: exit.code ?? undefined, signal: exit.signal ?? undefined });
      this.onExit(exit);
    });
    this.log.info('QEMU started', { pid: child.pid, command: [program, ...args].join(' ') });
    this.dialer.start(onSocket);
  }

  ready(): void {
    this.dialer.ready();
  }

  lost(): void {
    if (this.child) this.dialer.lost();
  }

  /** Stops QEMU if it still runs (SIGTERM, then SIGKILL after `graceMs`) and removes the private socket. */
  async stop(graceMs = 5000): Promise<void> {
    await this.dialer.stop();
    const child = this.child;
    if (child && this.exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
