import type { MuxConfig } from '../config/config-types.ts';
import { readConfig } from '../config/file.ts';
import { preflight } from '../config/preflight.ts';
import { NO_COMMAND_LINE, resolveOptions } from '../config/resolve.ts';
import { createLogger, type LoggerOptions } from '../log.ts';
import type { Address } from '../net/address.ts';
import { policyWarnings } from '../policy/warnings.ts';
import { createSource } from '../upstream/create-source.ts';
import type { QemuExit } from '../upstream/spawn-source.ts';
import { Mux } from './mux.ts';

export interface StartOptions {
  /** Where log lines go, and how many; by default none are written. */
  log?: Partial<LoggerOptions>;
}

/** A qmp-mux running in this process. */
export interface RunningMux {
  /** Where clients connect, by endpoint name (a TCP port of 0 resolved). */
  readonly endpoints: ReadonlyMap<string, Address>;
  /**
   * Stops: as on SIGTERM, replies already owed go out, clients are closed,
   * a QEMU it started is stopped as configured, its sockets are removed.
   */
  stop(): Promise<void>;
  /** Resolves once stopped, by `stop` or because a QEMU it started exited (with how). */
  readonly done: Promise<QemuExit | undefined>;
}

/**
 * Starts a qmp-mux in this process. `config` is what a configuration file
 * holds (see config/example.json; its type is `MuxConfig`, so a misspelt
 * key does not compile), checked the same way at run time and with the same
 * messages: a mistake throws a ConfigError naming the field, and what the
 * machine will not allow throws before anything starts. With no upstream,
 * it starts a throwaway QEMU, as the command does.
 */
export async function startMux(config: MuxConfig = {}, options: StartOptions = {}): Promise<RunningMux> {
  const resolved = resolveOptions(NO_COMMAND_LINE, readConfig(config));
  await preflight(resolved);
  const log = createLogger({ ...resolved.log, sink: () => undefined, ...options.log });
  for (const w of policyWarnings(resolved.endpoints)) log.warn(w.message, { endpoint: w.endpoint });
  let exited: (exit: QemuExit | undefined) => void = () => undefined;
  const done = new Promise<QemuExit | undefined>((r) => (exited = r));
  const source = createSource(resolved, {
    log,
    onQemuExit: (exit) => void mux.stop().then(() => exited(exit)),
  });
  const mux = new Mux(resolved, source, log);
  const bound = await mux.start();
  return {
    endpoints: new Map(bound.map((e) => [e.name, e.address])),
    stop: async () => {
      await mux.stop();
      exited(undefined);
    },
    done,
  };
}
