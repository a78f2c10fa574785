/**
 * Every error qmp-mux raises on purpose, each with a stable `code` that
 * tests and callers match on (messages are for people and may change).
 */
export class QmpMuxError extends Error {
  constructor(
    readonly code: string,
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

/** QEMU's output broke the protocol (a message past the size limit). */
export class UpstreamFramingError extends QmpMuxError {
  constructor(message: string) {
    super('QMPMUX_UPSTREAM_FRAMING', message);
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
