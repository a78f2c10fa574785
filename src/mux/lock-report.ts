import type { Logger } from '../log.ts';
import type { AuditLog } from '../ops/audit-log.ts';
import { LockMetrics } from '../ops/lock-metrics.ts';
import type { Registry } from '../ops/prometheus.ts';
import { LOCK_MODES } from '../qmp/extensions.ts';
import type { Holding, LockEnd, LockObserver } from './lock-model.ts';
import { MonitorLock } from './monitor-lock.ts';
import { auditFields, logFields, type Who } from './who.ts';

/** The monitor's lock, told to the log, the audit log and the metrics (registered in `registry`). */
export function reportedLock(log: Logger, audit: AuditLog | undefined, registry: Registry): MonitorLock {
  const metrics: LockMetrics = new LockMetrics(registry, {
    modes: LOCK_MODES,
    current: () => {
      const h = lock.holding;
      return h && { mode: h.mode, endpoint: h.party.who.endpoint, seconds: h.grantedAt === undefined ? 0 : (performance.now() - h.grantedAt) / 1000 };
    },
    waitingCommands: () => lock.commandsWaiting,
  });
  const lock: MonitorLock = new MonitorLock(new LockReport(log, audit, metrics));
  return lock;
}

/**
 * Where what the lock does is told: a log line when a lock is granted or
 * ends (a warning when a lease runs out: a tool went silent holding the
 * monitor), a line in the audit log, the metrics.
 */
export class LockReport implements LockObserver {
  constructor(
    private readonly log: Logger,
    private readonly audit: AuditLog | undefined,
    private readonly metrics: LockMetrics,
  ) {}

  granted(h: Holding, waitedMs: number): void {
    const { who } = h.party;
    this.metrics.granted(who.endpoint, h.mode);
    this.log.info('lock granted', { ...logFields(who), mode: h.mode, reason: h.reason, leaseMs: h.leaseMs, waitedMs: Math.round(waitedMs) });
    this.audit?.lock({ action: 'granted', ...auditFields(who), mode: h.mode, reason: h.reason, leaseMs: h.leaseMs, seconds: waitedMs / 1000 });
  }

  ended(h: Holding, why: LockEnd, heldMs: number): void {
    const { who } = h.party;
    this.metrics.ended(who.endpoint, why, heldMs / 1000);
    const fields = { ...logFields(who), mode: h.mode, why, heldMs: Math.round(heldMs) };
    if (why === 'lease') this.log.warn('lock ended: its holder sent nothing for its lease', { ...fields, leaseMs: h.leaseMs });
    else this.log.info('lock ended', fields);
    this.audit?.lock({ action: 'ended', why, ...auditFields(who), mode: h.mode, reason: h.reason, seconds: heldMs / 1000 });
  }

  waited(who: Who): void {
    this.metrics.waited(who.endpoint);
  }
}
