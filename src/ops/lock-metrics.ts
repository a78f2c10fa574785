import type { Counter, Registry } from './prometheus.ts';

/** What the lock's metrics ask of the lock when scraped. */
export interface LockProbe {
  /** The lock's modes, every one reported (1 for the one held, 0 for the others). */
  readonly modes: readonly string[];
  /** The lock held now (or being granted): its mode, its holder's endpoint, seconds since it was granted (0 before). */
  current(): { mode: string; endpoint: string; seconds: number } | undefined;
  /** Commands waiting behind locks now. */
  waitingCommands(): number;
}

/**
 * The lock's metrics. Their labels are endpoint names (from the
 * configuration), lock modes and the reasons a lock ends: no client can add
 * a series. Counted only when locks are taken, end, or make a command wait.
 */
export class LockMetrics {
  private readonly locks: Counter;
  private readonly ends: Counter;
  private readonly waits: Counter;
  /** Seconds locks that have ended were held, by their holders' endpoints. */
  private readonly heldSeconds = new Map<string, number>();

  constructor(registry: Registry, probe: LockProbe) {
    registry.collectedGauge({
      name: 'qmpmux_lock_held',
      help: 'Whether a client holds the lock (or is being granted it), by mode: 1 for the mode held, 0 for the others.',
      labelNames: ['mode'],
      collect: (report) => {
        const mode = probe.current()?.mode;
        for (const m of probe.modes) report(m === mode ? 1 : 0, m);
      },
    });
    registry.collectedCounter({
      name: 'qmpmux_lock_held_seconds_total',
      help: "Seconds locks were held, by the holder's endpoint (the lock held now included).",
      labelNames: ['endpoint'],
      collect: (report) => {
        const now = probe.current();
        for (const [endpoint, seconds] of this.heldSeconds) report(seconds + (now?.endpoint === endpoint ? now.seconds : 0), endpoint);
        if (now !== undefined && !this.heldSeconds.has(now.endpoint)) report(now.seconds, now.endpoint);
      },
    });
    this.locks = registry.counter({ name: 'qmpmux_locks_total', help: "Locks granted, by the holder's endpoint and mode.", labelNames: ['endpoint', 'mode'] });
    this.ends = registry.counter({ name: 'qmpmux_lock_ends_total', help: 'Locks ended, by why: unlock, lease, disconnect, qemu-gone, stopping.', labelNames: ['why'] });
    this.waits = registry.counter({ name: 'qmpmux_lock_waits_total', help: "Commands and lock requests that waited for another client's lock, by endpoint.", labelNames: ['endpoint'] });
    registry.collectedGauge({
      name: 'qmpmux_lock_waiting_commands',
      help: 'Commands waiting behind locks now (lock requests included).',
      collect: (report) => report(probe.waitingCommands()),
    });
  }

  granted(endpoint: string, mode: string): void {
    this.locks.labels(endpoint, mode).inc();
  }

  ended(endpoint: string, why: string, seconds: number): void {
    this.ends.labels(why).inc();
    this.heldSeconds.set(endpoint, (this.heldSeconds.get(endpoint) ?? 0) + seconds);
  }

  waited(endpoint: string): void {
    this.waits.labels(endpoint).inc();
  }
}
