/** Every code a QmpMuxError can have: a comparison with any other does not compile. */
export type ErrorCode =
  | 'QMPMUX_ADDRESS'
  | 'QMPMUX_USAGE'
  | 'QMPMUX_LISTEN'
  | 'QMPMUX_CONFIG'
  | 'QMPMUX_SPAWN'
  | 'QMPMUX_ACTIVATION'
  | 'QMPMUX_QMP_ERROR'
  | 'QMPMUX_CONNECTION'
  | 'QMPMUX_PROTOCOL'
  | 'QMPMUX_TIMEOUT'
  | 'QMPMUX_SHORTHAND'
  | 'QMPMUX_VALUE'
  | 'QMPMUX_EVENT_OVERFLOW';

/**
 * Every error qmp-mux raises on purpose, each with a stable `code` that
 * tests and callers match on (messages are for people and may change).
 */
export class QmpMuxError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A socket address that does not parse. */
export class AddressError extends QmpMuxError {
  constructor(message: string) {
    super('QMPMUX_ADDRESS', message);
  }
}

/** A bad command line. */
export class UsageError extends QmpMuxError {
  constructor(message: string) {
    super('QMPMUX_USAGE', message);
  }
}

/** An endpoint that cannot be listened on. */
export class ListenError extends QmpMuxError {
  constructor(message: string) {
    super('QMPMUX_LISTEN', message);
  }
}

/** A configuration file or value that is not valid; the message names the field. */
export class ConfigError extends QmpMuxError {
  constructor(message: string) {
    super('QMPMUX_CONFIG', message);
  }
}

/** QEMU could not be started. */
export class SpawnError extends QmpMuxError {
  constructor(message: string) {
    super('QMPMUX_SPAWN', message);
  }
}

/** Sockets passed by systemd (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES) that cannot be used as given. */
export class ActivationError extends QmpMuxError {
  constructor(message: string) {
    super('QMPMUX_ACTIVATION', message);
  }
}

/** An error reply to a command; `errorClass` and `desc` are the server's own. */
export class QmpError extends QmpMuxError {
  constructor(
    /** The command that failed. */
    readonly command: string,
    /** The QMP error class, e.g. `GenericError`, `CommandNotFound`. */
    readonly errorClass: string,
    /** The server's description, for people (QMP says clients must not parse it). */
    readonly desc: string,
  ) {
    super('QMPMUX_QMP_ERROR', `${errorClass}: ${desc}`);
  }
}

/** A connection that could not be opened, or that ended before an answer came. */
export class ConnectionError extends QmpMuxError {
  constructor(message: string) {
    super('QMPMUX_CONNECTION', message);
  }
}

/** The peer does not speak QMP as a server does (no greeting, a reply that belongs to nothing...). */
export class ProtocolError extends QmpMuxError {
  constructor(message: string) {
    super('QMPMUX_PROTOCOL', message);
  }
}

/** A time limit ran out (the greeting, or a whole `exec` run). */
export class TimeoutError extends QmpMuxError {
  constructor(message: string) {
    super('QMPMUX_TIMEOUT', message);
  }
}

/** A command line in the shell's shorthand that does not parse; the message names the word and column. */
export class ShorthandError extends QmpMuxError {
  constructor(message: string) {
    super('QMPMUX_SHORTHAND', message);
  }
}

/** A value that cannot be sent without losing its meaning (an unsafe integer, NaN, a function...). */
export class ValueError extends QmpMuxError {
  constructor(message: string) {
    super('QMPMUX_VALUE', message);
  }
}

/** An event iterator whose reader fell too far behind; it ends with this error. */
export class EventOverflowError extends QmpMuxError {
  constructor(message: string) {
    super('QMPMUX_EVENT_OVERFLOW', message);
  }
}
