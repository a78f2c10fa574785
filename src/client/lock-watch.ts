import { QmpMuxError } from '../errors.ts';
import { isObject, JsonNumber, type JsonValue } from '../json/value.ts';
import { LOCK, QUERY_LOCK, UNLOCK } from '../qmp/extensions.ts';
import type { QmpClient } from './qmp-client.ts';

/** qmp-mux's lock as a shell shows it. */
export interface LockView {
  /** This client holds it. */
  readonly mine: boolean;
  readonly mode: string;
  readonly client: number;
  readonly endpoint: string;
  /** The identity its holder's certificate matched, if any. */
  readonly identity: string | undefined;
  readonly reason: string | undefined;
  readonly since: string;
}

/** The lock `query-lock` answered, or undefined when there is none (or the answer is not one). */
export function readLockView(value: JsonValue): LockView | undefined {
  if (!isObject(value)) return undefined;
  const mode = value.get('mode');
  const client = value.get('client');
  const endpoint = value.get('endpoint');
  const since = value.get('since');
  const reason = value.get('reason');
  const identity = value.get('identity');
  if (typeof mode !== 'string' || !(client instanceof JsonNumber) || typeof endpoint !== 'string' || typeof since !== 'string') return undefined;
  const text = (v: JsonValue | undefined): string | undefined => (typeof v === 'string' ? v : undefined);
  return { mine: value.get('mine') === true, mode, client: Number(client.text), endpoint, identity: text(identity), reason: text(reason), since };
}

/** One line saying where the lock is now. */
export function describeLockView(view: LockView | undefined): string {
  if (view === undefined) return 'lock: none held now';
  const why = view.reason === undefined ? '' : ` (reason: ${view.reason})`;
  const lock = `${view.mode === 'exclusive' ? 'an' : 'a'} ${view.mode} lock`;
  if (view.mine) return `lock: this shell holds ${lock}${why}`;
  const identity = view.identity === undefined ? '' : ` (identity '${view.identity}')`;
  return `lock: client ${view.client} on endpoint '${view.endpoint}'${identity} holds ${lock} since ${view.since}${why}`;
}

/** What the prompt says of the lock: nothing when there is none. */
export function lockPromptTag(view: LockView | undefined): string {
  if (view === undefined) return '';
  return view.mine ? `, ${view.mode}-locked` : `, locked by client ${view.client}`;
}

/**
 * The shell's words for the lock, as the commands they stand for:
 * `lock MODE [KEY=VALUE...]` is `__org.qmp-mux_lock mode=MODE KEY=VALUE...`,
 * `unlock` is `__org.qmp-mux_unlock`. Other lines are left as they are.
 */
export function lockShorthand(line: string): string {
  const words = /^\s*(lock|unlock)(?:\s+(.*))?$/.exec(line);
  if (!words) return line;
  const [, verb, rest = ''] = words;
  if (verb === 'unlock') return rest.trim() === '' ? UNLOCK : `${UNLOCK} ${rest}`;
  // `lock` alone goes as it is: qmp-mux says the mode is missing.
  const [, first = '', more = ''] = /^(\S*)(.*)$/.exec(rest) ?? [];
  return first === '' || first.includes('=') ? `${LOCK} ${rest}` : `${LOCK} mode=${first}${more}`;
}

/**
 * Keeps a shell told where qmp-mux's lock is: asks `query-lock` (which
 * reaches no QEMU, and does not renew a lease: a shell left open does not
 * keep its lock) now, after every command and every `everyMs`, and says
 * when the answer changes.
 */
export class LockWatch {
  private said: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private asking = false;

  constructor(
    private readonly client: QmpClient,
    private readonly changed: (view: LockView | undefined) => void,
  ) {}

  start(everyMs: number): void {
    this.timer = setInterval(() => void this.check(), everyMs);
    this.timer.unref();
    void this.check();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Asks where the lock is; says so if that changed. */
  async check(): Promise<void> {
    if (this.asking) return;
    this.asking = true;
    try {
      const view = readLockView(await this.client.executeJson(QUERY_LOCK));
      const key = view === undefined ? '' : `${view.mine} ${view.mode} ${view.client} ${view.since}`;
      if (key === this.said || (this.said === undefined && key === '')) {
        this.said = key;
        return;
      }
      this.said = key;
      this.changed(view);
    } catch (e) {
      // The connection went: the shell says so, and a new watch comes with the next connection.
      if (!(e instanceof QmpMuxError)) throw e;
    } finally {
      this.asking = false;
    }
  }
}
