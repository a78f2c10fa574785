/** What a stall watch reports. */
export interface StallEvents {
  /** The oldest unanswered command has waited past the threshold: `waitedMs` so far. */
  stalled(waitedMs: number): void;
  /** The stall is over (QEMU answered, or the connection went): it lasted `stalledMs` past the command's sending. */
  recovered(stalledMs: number): void;
}

/**
 * Tells when QEMU leaves a command unanswered too long: a stuck main loop, a
 * stopped process, a command that blocks on storage. Fed the time the
 * oldest unanswered command was sent, whenever asked; says once when a
 * stall starts and once when it ends. Pure: the caller asks it to `check`
 * (on a timer) with the current time.
 */
export class StallWatch {
  /** When the command found stalled was sent, while a stall lasts. */
  private since: number | undefined;

  constructor(
    /** How long a command may wait, ms; a reload may change it. */
    public thresholdMs: number,
    private readonly events: StallEvents,
  ) {}

  /** Whether a command sent at `oldestSentAt` has waited past the threshold at `now`. */
  isStalled(oldestSentAt: number | undefined, now: number): boolean {
    return oldestSentAt !== undefined && now - oldestSentAt > this.thresholdMs;
  }

  /** Looks at the oldest unanswered command (sent at `oldestSentAt`, if any) at time `now`. */
  check(oldestSentAt: number | undefined, now: number): void {
    const stalled = this.isStalled(oldestSentAt, now);
    if (this.since === undefined) {
      if (!stalled) return;
      this.since = oldestSentAt;
      this.events.stalled(now - oldestSentAt!);
      return;
    }
    if (stalled) return;
    const lasted = now - this.since;
    this.since = undefined;
    this.events.recovered(lasted);
  }
}
