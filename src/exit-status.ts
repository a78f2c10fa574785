/**
 * Every exit status qmp-mux's commands end with, in one place (the README
 * has both tables). The proxy and the client subcommands are different
 * programs to their callers, so each has its own.
 */

/** `qmp-mux` running the proxy. */
export const PROXY_EXIT = {
  ok: 0,
  /** Start-up failed (an endpoint or a listener could not be opened, a takeover failed), or a second signal ended the stop at once. */
  failed: 1,
  /** Bad command line or configuration, or the machine will not let qmp-mux do what it asks. */
  config: 2,
  /** An internal error; qmp-mux stopped as cleanly as it could. */
  internal: 70,
  /** QEMU could not be executed. */
  cannotExecute: 127,
} as const;

/** `qmp-mux exec`, `events`, `shell` and `wait-ready`. */
export const CLIENT_EXIT = {
  ok: 0,
  /** A command got a QMP error reply. */
  qmpError: 1,
  /** A bad command line, or a command that does not parse. */
  usage: 2,
  /** Could not connect, the server is not a QMP server, or the connection ended too early. */
  connection: 3,
  /** `--timeout` ran out, or the server did not greet in time. */
  timeout: 4,
  /** The output could not be written (a full disk; not a reader that went away, which ends the run with 0). */
  output: 5,
} as const;

export type ClientExit = (typeof CLIENT_EXIT)[keyof typeof CLIENT_EXIT];
