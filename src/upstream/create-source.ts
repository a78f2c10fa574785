import type { Logger } from '../log.ts';
import { assertNever } from '../util/assert.ts';
import type { BackoffOptions } from './backoff.ts';
import { Dialer } from './dial-source.ts';
import { ListenSource } from './listen-source.ts';
import type { UpstreamOptions, UpstreamSource } from './source.ts';
import { SpawnSource, type QemuExit } from './spawn-source.ts';
import { TakeoverSource } from './takeover.ts';

export interface SourceContext {
  log: Logger;
  /** A QEMU qmp-mux started has exited. */
  onQemuExit: (exit: QemuExit) => void;
}

/** What choosing a source takes of the options. */
export interface SourceOptions {
  upstream: UpstreamOptions;
  backoff: BackoffOptions;
}

/** The source `options` ask for. */
export function createSource(options: SourceOptions, context: SourceContext): UpstreamSource {
  const u = options.upstream;
  const { log } = context;
  switch (u.mode) {
    case 'connect':
      if (u.takeover && u.address.type === 'unix') return new TakeoverSource({ path: u.address.path, backoff: options.backoff, log });
      return new Dialer({ address: u.address, backoff: options.backoff, log });
    case 'listen':
      return new ListenSource({ address: u.address, log });
    case 'spawn':
      return new SpawnSource({ ...u, log, onExit: context.onQemuExit });
    default:
      return assertNever(u);
  }
}
