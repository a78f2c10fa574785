import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Endpoint } from '../downstream/endpoint.ts';
import { SpawnError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { Dialer } from './dial-source.ts';
import type { AskQemu, StopPolicy, UpstreamSource } from './source.ts';

export interface QemuExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnSourceOptions {
  command: readonly string[];
  /** What stopping qmp-mux does to QEMU. */
  onStop: StopPolicy;
  /** With `powerdown`: how long the guest gets before `quit`, ms. */
  powerdownTimeoutMs: number;
  /** After `quit`, how long QEMU gets to exit before SIGTERM, then SIGKILL, ms (default 10000). */
  quitTimeoutMs?: number;
  log: Logger;
  /** QEMU has exited. */
  onExit: (exit: QemuExit) => void;
}

/** Private directories are named `qmp-mux-PID-XXXXXX` after the qmp-mux that made them. */
const DIR_PREFIX = 'qmp-mux-';
const QEMU_PID_FILE = 'qemu.pid';

/**
 * Runs QEMU as a child with a private QMP socket added to its arguments,
 * and dials that socket. QEMU's stdout and stderr are qmp-mux's. QEMU runs
 * in its own process group, so a Ctrl-C meant for qmp-mux reaches QEMU only
 * the way qmp-mux decides (`onStop`). The private directory exists from just
 * before QEMU starts until it has exited (or, with `leave`, for as long as
 * QEMU runs).
 */
export class SpawnSource implements UpstreamSource {
  readonly mode = 'spawn';
  readonly endpoints: readonly Endpoint[] = [];
  private child: ChildProcess | undefined;
  private dir: string | undefined;
  private dialer: Dialer | undefined;
  private exited: Promise<QemuExit> | undefined;

  constructor(private readonly options: SpawnSourceOptions) {}

  /** Reports what an earlier qmp-mux that could not clean up (SIGKILL) left behind. */
  open(): Promise<void> {
    for (const left of leftBehind()) {
      if (left.qemuPid !== undefined) {
        this.options.log.warn('a QEMU started by an earlier qmp-mux is still running; qmp-mux will start another', {
          pid: left.qemuPid,
          qmp: `unix:${join(left.dir, 'qmp.sock')}`,
          hint: 'to serve that QEMU instead, stop this one and run qmp-mux with --upstream unix:' + join(left.dir, 'qmp.sock'),
        });
      } else {
        rmSync(left.dir, { recursive: true, force: true });
        this.options.log.info('removed the private directory of an earlier qmp-mux that did not exit cleanly', { dir: left.dir });
      }
    }
    return Promise.resolve();
  }

  start(onSocket: (socket: Socket) => void): Promise<void> {
    const [program, ...args] = this.options.command;
    if (program === undefined) return Promise.reject(new SpawnError('no QEMU command given'));
    const dir = mkdtempSync(join(tmpdir(), `${DIR_PREFIX}${process.pid}-`));
    this.dir = dir;
    const socketPath = join(dir, 'qmp.sock');
    args.push('-qmp', `unix:${socketPath},server=on,wait=off`);
    const child = spawn(program, args, { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
    this.child = child;
    const log = this.options.log;
    return new Promise((resolve, reject) => {
      child.once('error', (err) => {
        this.child = undefined;
        this.removeDir();
        reject(new SpawnError(`cannot start ${program}: ${err.message}`));
      });
      child.once('spawn', () => {
        writeFileSync(join(dir, QEMU_PID_FILE), `${child.pid}\n`);
        this.exited = new Promise((done) => child.once('exit', (code, signal) => done({ code, signal })));
        void this.exited.then((exit) => {
          this.child = undefined;
          void this.dialer?.stop();
          log.info('QEMU exited', { pid: child.pid, code: exit.code ?? undefined, signal: exit.signal ?? undefined });
          this.removeDir();
          this.options.onExit(exit);
        });
        log.info('QEMU started', { pid: child.pid, command: [program, ...args].join(' ') });
        // QEMU creates its socket within a few ms of starting: dial eagerly, and
        // only a QEMU that takes seconds to get there is worth a warning.
        this.dialer = new Dialer({ address: { type: 'unix', path: socketPath }, backoff: { initialMs: 5, maxMs: 200 }, log, quietMs: 3000 });
        void this.dialer.start(onSocket);
        resolve();
      });
    });
  }

  ready(): void {
    this.dialer?.ready();
  }

  lost(): void {
    if (this.child) this.dialer?.lost();
  }

  async stop(ask: AskQemu): Promise<void> {
    await this.dialer?.stop();
    const child = this.child;
    const exited = this.exited;
    if (!child || !exited) return;
    const { onStop, powerdownTimeoutMs, quitTimeoutMs = 10_000, log } = this.options;
    if (onStop === 'leave') {
      child.unref();
      log.info('leaving QEMU running', { pid: child.pid, qmp: `unix:${join(this.dir!, 'qmp.sock')}` });
      return;
    }
    const gone = exited.then(() => true);
    // A QEMU that does not answer (frozen, or its main loop blocked) has not obeyed: the time runs from asking, not from its answer.
    const obeys = (command: string, ms: number): Promise<boolean> => within(ask(command).then((answered) => (answered ? gone : false)), ms, false);
    if (onStop === 'powerdown') {
      log.info('asking the guest to power down', { pid: child.pid, timeoutMs: powerdownTimeoutMs });
      if (await obeys('system_powerdown', powerdownTimeoutMs)) return;
    }
    log.info('asking QEMU to quit', { pid: child.pid });
    if (await obeys('quit', quitTimeoutMs)) return;
    log.warn('QEMU did not quit; terminating it', { pid: child.pid });
    terminate(child);
    if (await within(gone, quitTimeoutMs, false)) return;
    child.kill('SIGKILL');
    await exited;
  }

  /** Sends QEMU SIGTERM without waiting (unless it is to be left running). */
  abort(): void {
    if (this.options.onStop === 'leave') return;
    if (this.child) terminate(this.child);
    this.removeDir();
  }

  private removeDir(): void {
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = undefined;
  }
}

/** What `p` settles to, or `late` if it has not within `ms`. */
async function within<T>(p: Promise<T>, ms: number, late: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const settled = await Promise.race([p, new Promise<T>((r) => (timer = setTimeout(() => r(late), ms)))]);
  clearTimeout(timer);
  return settled;
}

/** SIGTERM, and SIGCONT so that a stopped QEMU (SIGSTOP, a debugger let go) acts on it rather than keep it pending for ever. */
function terminate(child: ChildProcess): void {
  child.kill('SIGTERM');
  child.kill('SIGCONT');
}

/**
 * Private directories of qmp-mux processes that are gone (killed, so unable
 * to clean up), ours by owner, with the QEMU still running in each, if any.
 */
function leftBehind(): { dir: string; qemuPid: number | undefined }[] {
  const base = tmpdir();
  const uid = process.getuid?.();
  const found: { dir: string; qemuPid: number | undefined }[] = [];
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return found;
  }
  for (const name of names) {
    const owner = new RegExp(`^${DIR_PREFIX}(\\d+)-`).exec(name);
    if (!owner || alive(Number(owner[1]))) continue;
    const dir = join(base, name);
    try {
      if (!statSync(dir).isDirectory() || (uid !== undefined && statSync(dir).uid !== uid)) continue;
    } catch {
      continue;
    }
    found.push({ dir, qemuPid: runningQemu(dir) });
  }
  return found;
}

/** The pid of the QEMU that serves `dir`'s socket, if it still runs (its command line names the directory). */
function runningQemu(dir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dir, QEMU_PID_FILE), 'utf8'));
    return alive(pid) && readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes(dir) ? pid : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Where `program` would be run from, as a shell finds it; undefined when it cannot be. */
export function findProgram(program: string): string | undefined {
  const candidates = program.includes('/') ? [program] : (process.env.PATH ?? '').split(delimiter).filter((d) => d !== '').map((d) => join(d, program));
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
      if (statSync(path).isFile()) return path;
    } catch {
      // not here
    }
  }
  return undefined;
}
