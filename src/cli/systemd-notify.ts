import { spawn } from 'node:child_process';
import { ConfigError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { findProgram } from '../upstream/spawn-source.ts';

/**
 * systemd's readiness protocol (sd_notify(3)) for a `Type=notify` service:
 * the service manager passes a unix datagram socket in NOTIFY_SOCKET and
 * waits for `READY=1` on it. Node.js has no unix datagram sockets, so the
 * messages are sent by `systemd-notify`, a child process (which is why the
 * unit needs `NotifyAccess=all`); it waits until systemd has taken each one.
 */

/** The program that sends the messages, from systemd itself. */
const NOTIFY_PROGRAM = 'systemd-notify';

/** How long one message may take before it is given up (systemd-notify waits for systemd to take it). */
const SEND_TIMEOUT_MS = 5000;

/**
 * The notifier the environment asks for, or undefined when NOTIFY_SOCKET is
 * not set. The variable is taken out of the environment (as
 * sd_notify(unset_environment=1) does), so that a QEMU qmp-mux starts does
 * not see it. Throws ConfigError when it is set but systemd-notify is not
 * on the PATH: systemd would wait for a readiness that never comes.
 */
export function takeNotifier(env: NodeJS.ProcessEnv = process.env): SystemdNotifier | undefined {
  const socket = env.NOTIFY_SOCKET;
  if (socket === undefined || socket === '') return undefined;
  const program = findProgram(NOTIFY_PROGRAM);
  if (program === undefined) {
    throw new ConfigError(`NOTIFY_SOCKET is set (a systemd Type=notify service), but ${NOTIFY_PROGRAM} is not on PATH: qmp-mux tells systemd it is ready through it (Debian package systemd)`);
  }
  delete env.NOTIFY_SOCKET;
  return new SystemdNotifier(program, socket);
}

/** Sends sd_notify messages through systemd-notify, one at a time, in order. */
export class SystemdNotifier {
  /** The last message sent or being sent: the next one goes after it. */
  private last: Promise<void> = Promise.resolve();
  private log: Logger | undefined;
  private failed = false;

  constructor(
    private readonly program: string,
    /** The socket systemd listens on (NOTIFY_SOCKET). */
    readonly socket: string,
  ) {}

  /** Where a message that could not be sent is said (once). */
  logTo(log: Logger): void {
    this.log = log;
  }

  /** Start-up is complete (`READY=1`), with a status line for `systemctl status`. */
  ready(status: string): Promise<void> {
    return this.send([`--pid=${process.pid}`, '--ready', `--status=${status}`]);
  }

  /** qmp-mux is stopping (`STOPPING=1`), and why. */
  stopping(status: string): Promise<void> {
    return this.send([`--status=${status}`, 'STOPPING=1']);
  }

  /** Resolves once every message so far has been sent, or given up. */
  settled(): Promise<void> {
    return this.last;
  }

  private send(args: string[]): Promise<void> {
    this.last = this.last.then(() => this.run(args));
    return this.last;
  }

  private run(args: string[]): Promise<void> {
    return new Promise((resolve) => {
      const child = spawn(this.program, args, { env: { ...process.env, NOTIFY_SOCKET: this.socket }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), SEND_TIMEOUT_MS);
      timer.unref();
      child.once('error', (e) => this.fail(e.message));
      // After an error too (a program that cannot be started ends with code -2).
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        if (code !== 0) this.fail(stderr.trim() || `exit ${code ?? signal}`);
        resolve();
      });
    });
  }

  /** systemd then goes without this message; said once, so a broken socket does not fill the log. */
  private fail(why: string): void {
    if (this.failed) return;
    this.failed = true;
    this.log?.error('cannot notify systemd', { program: this.program, socket: this.socket, why });
  }
}
