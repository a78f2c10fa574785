/**
 * The longest delay Node's timers wait. A longer one overflows: Node warns
 * (TimeoutOverflowWarning) and fires it after 1 ms, so a generous limit
 * would end at once.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Throws a RangeError naming `option` unless `value` is absent or milliseconds a timer can wait (0 to MAX_TIMER_MS). */
export function checkTimerMs(value: number | undefined, option: string): void {
  if (value === undefined || (value >= 0 && value <= MAX_TIMER_MS)) return;
  throw new RangeError(`${option}: expected a number of milliseconds from 0 to ${MAX_TIMER_MS}, got ${String(value)}`);
}
