import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StopPolicy } from '../config/options.ts';
import type { Logger } from '../log.ts';
import { Dialer, type AskQemu, type UpstreamSource } from './dialer.ts';

export interface QemuExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface QemuProcessOptions {
  command: readonly string[];
  /** What stopping qmp-mux does to QEMU. */
  onStop: StopPolicy;
  /** With `powerdown`: how long the guest gets before `quit`, ms. */
  powerdownTimeoutMs: number;
  /** After `quit`, how long QEMU gets to exit before SIGKILL, ms. */
  quitTimeoutMs?: number;
}

/**
 * Runs QEMU as a child with a private QMP socket added to its arguments,
 * and dials that socket. QEMU's stdout and stderr are qmp-mux's. QEMU runs
 * in its own process group, so a Ctrl-C meant for qmp-mux reaches QEMU only
 * the way qmp-mux decides (`onStop`).
 */
export class QemuProcess implements UpstreamSource {
  private child: ChildProcess | undefined;
  private readonly dir: string;
  private readonly dialer: Dialer;
  private exited: Promise<QemuExit> | undefined;

  constructor(
    private readonly options: QemuProcessOptions,
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
    const [program, ...args] = this.options.command;
    if (program === undefined) throw new Error('no QEMU command given');
    args.push('-qmp', `unix:${this.socketPath},server=on,wait=off`);
    const child = spawn(program, args, { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
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
      rmSync(this.dir, { recursive: true, force: true });
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

  async stop(ask: AskQemu): Promise<void> {
    await this.dialer.stop();
    const child = this.child;
    const exited = this.exited;
    if (!child || !exited) return;
    const { onStop, powerdownTimeoutMs, quitTimeoutMs = 10_000 } = this.options;
    if (onStop === 'leave') {
      child.unref();
      this.log.info('leaving QEMU running', { pid: child.pid, qmp: `unix:${this.socketPath}` });
      return;
    }
    if (onStop === 'powerdown') {
      this.log.info('asking the guest to power down', { pid: child.pid, timeoutMs: powerdownTimeoutMs });
      if ((await ask('system_powerdown')) && (await within(exited, powerdownTimeoutMs))) return;
    }
    this.log.info('asking QEMU to quit', { pid: child.pid });
    if ((await ask('quit')) && (await within(exited, quitTimeoutMs))) return;
    this.log.warn('QEMU did not quit; terminating it', { pid: child.pid });
    child.kill('SIGTERM');
    if (await within(exited, quitTimeoutMs)) return;
    child.kill('SIGKILL');
    await exited;
  }
}

/** Whether `p` settles within `ms`. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = await Promise.race([p.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
  clearTimeout(timer);
  return settled;
}
