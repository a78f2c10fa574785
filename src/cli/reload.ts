import type { Options } from '../config/options.ts';
import { preflight } from '../config/preflight.ts';
import { QmpMuxError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Mux } from '../mux/mux.ts';
import { policyWarnings } from '../policy/warnings.ts';

/** The signal that reloads the configuration (SIGHUP stops: a terminal closing must not leave qmp-mux running). */
export const RELOAD_SIGNAL = 'SIGUSR2';

export interface ReloaderOptions {
  /** Reads the configuration as start-up did: the file again, the same command line. */
  load(): Options;
  mux: Mux;
  log: Logger;
  /** What qmp-mux runs with now. */
  running: Options;
  /** Endpoints on sockets systemd passed: never bound by qmp-mux itself. */
  inherited: ReadonlySet<string>;
}

/**
 * Reloads the configuration without dropping clients: read and checked as
 * at start-up, with the same messages (a configuration start-up would
 * refuse is refused, and the running one stays), then applied by the mux.
 * One reload at a time; a signal during one starts another after it, so
 * the last file written is the one that holds. One log line says what
 * changed, or why nothing did.
 */
export function reloader(options: ReloaderOptions): () => void {
  let running = options.running;
  let busy: Promise<void> | undefined;
  let again = false;
  const reload = async (): Promise<void> => {
    const { log, mux } = options;
    try {
      const next = options.load();
      // Addresses qmp-mux listens on already are its own: not probed.
      const listening = new Set(running.endpoints.filter((e) => next.endpoints.some((n) => n.name === e.name && JSON.stringify(n.address) === JSON.stringify(e.address))).map((e) => e.name));
      await preflight(next, new Set([...options.inherited, ...listening]));
      const plan = await mux.reload(next);
      running = next;
      for (const w of policyWarnings(next.endpoints)) log.warn(w.message, { endpoint: w.endpoint });
      const names = (list: readonly { name: string }[]): string | undefined => (list.length > 0 ? list.map((e) => e.name).join(',') : undefined);
      log.info('reloaded the configuration', { added: names(plan.added), removed: plan.removed.join(',') || undefined, changed: names(plan.changed) });
    } catch (e) {
      if (!(e instanceof QmpMuxError)) throw e;
      log.error('reload refused; the running configuration stays', { why: e.message });
    }
  };
  return () => {
    if (busy) {
      again = true;
      return;
    }
    busy = (async () => {
      do {
        again = false;
        await reload();
      } while (again);
      busy = undefined;
    })();
  };
}
