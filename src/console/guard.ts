/**
 * Slows down guessing the token at the console's sign-in: each failure is answered after FAILURE_DELAY_MS,
 * and a client (by IP) with MAX_FAILURES failures in a WINDOW_MS window is refused until the window ends.
 * The count lives in the isolate's memory: each isolate (and each Cloudflare location) counts on its own, so
 * this slows a guesser down rather than being an exact global limit. ADMIN_TOKEN should be long and random.
 */

export const MAX_FAILURES = 5;
export const WINDOW_MS = 15 * 60 * 1000;
export const FAILURE_DELAY_MS = 1000;
/** Clients remembered at most; the oldest are forgotten first. */
const MAX_CLIENTS = 10_000;

interface Failures {
  since: number;
  count: number;
}

const failures = new Map<string, Failures>();

function current(client: string, now: number): Failures | undefined {
  const entry = failures.get(client);
  if (entry !== undefined && now - entry.since >= WINDOW_MS) {
    failures.delete(client);
    return undefined;
  }
  return entry;
}

/** Seconds until `client` may try again, or 0 when it may try now. */
export function blockedFor(client: string, now = Date.now()): number {
  const entry = current(client, now);
  if (entry === undefined || entry.count < MAX_FAILURES) return 0;
  return Math.max(1, Math.ceil((entry.since + WINDOW_MS - now) / 1000));
}

/** Counts a failed sign-in; returns the failures of `client` in its window so far. */
export function recordFailure(client: string, now = Date.now()): number {
  const entry = current(client, now) ?? { since: now, count: 0 };
  entry.count++;
  failures.delete(client);
  failures.set(client, entry);
  if (failures.size > MAX_CLIENTS) failures.delete(failures.keys().next().value!);
  return entry.count;
}

/** A successful sign-in clears the client's failures. */
export function clearFailures(client: string): void {
  failures.delete(client);
}

/** Forget every client (between tests). */
export function resetGuard(): void {
  failures.clear();
}
