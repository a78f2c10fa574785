/**
 * Run-time checks of what the code believes. TypeScript's `!` states a
 * belief and checks nothing; these throw at the place the belief fails, so
 * an impossible state is a clear internal error, never a wrong reply.
 */

/** A case a `switch` over a union did not handle. */
export function assertNever(x: never): never {
  throw new Error(`internal error: unexpected value ${JSON.stringify(x)}`);
}

/** Throws unless `condition` holds. */
export function invariant(condition: unknown, what: string): asserts condition {
  if (!condition) throw new Error(`internal error: ${what}`);
}

/** `value`, which must be there. */
export function present<T>(value: T | undefined | null, what: string): T {
  if (value === undefined || value === null) throw new Error(`internal error: ${what} is missing`);
  return value;
}
