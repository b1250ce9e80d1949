import { seqAt, statusOfCode } from "./keys.ts";
import { namesOf } from "./names.ts";
import { iso } from "./rows.ts";
import { ensureLedger } from "./schema.ts";
import { type DestinationStats, noDestinationStats, type Stats } from "./views.ts";
import { waiting } from "./waiting.ts";

/** Latency percentiles are taken over at most this many of a destination's latest attempts in the window. */
export const LATENCY_SAMPLE = 10_000;

/**
 * Per destination, the deliveries of the calls accepted since `since` by their status now, their attempts'
 * latency, and the last success and failure among those attempts; calls per Action (docs/ledger.md, "Stats").
 */
export async function stats(db: D1Database, payloads: R2Bucket | undefined, since: number): Promise<Stats> {
  await ensureLedger(db);
  const held = waiting(payloads);
  const from = seqAt(since);
  const [byStatus, attempts, actions] = await db.batch([
    db
      .prepare(
        // Grouped status first, so that SQLite reads the window's range of keys rather than a whole index in order.
        "SELECT destination, status, COUNT(*) AS n FROM ledger_deliveries WHERE call >= ?1 GROUP BY status, destination",
      )
      .bind(from),
    db
      .prepare(
        `SELECT destination, COUNT(duration_ms) AS timed,
           MAX(CASE WHEN outcome = 0 THEN at END) AS delivered_at,
           MAX(CASE WHEN outcome <> 0 THEN at END) AS failed_at
         FROM ledger_attempts WHERE call >= ?1 GROUP BY destination`,
      )
      .bind(from),
    // Per name that is an Action, its calls in the window, each an index range of ledger_actions.
    db
      .prepare(
        `SELECT n.id AS action, (SELECT COUNT(*) FROM ledger_actions a WHERE a.action = n.id AND a.call >= ?1) AS n
         FROM ledger_names n WHERE EXISTS (SELECT 1 FROM ledger_actions a WHERE a.action = n.id)`,
      )
      .bind(from),
  ]);
  const counts = byStatus!.results as { destination: number; status: number; n: number }[];
  const timed = attempts!.results as {
    destination: number;
    timed: number;
    delivered_at: number | null;
    failed_at: number | null;
  }[];
  const perAction = (actions!.results as { action: number; n: number }[]).filter((r) => r.n > 0);
  const name = await namesOf(db, [
    ...counts.map((r) => r.destination),
    ...timed.map((r) => r.destination),
    ...perAction.map((r) => r.action),
  ]);
  const destinations: Record<string, DestinationStats> = {};
  const of = (number: number) => (destinations[name(number)] ??= noDestinationStats());
  for (const row of counts) of(row.destination)[statusOfCode(row.status)] += row.n;
  for (const row of timed) {
    of(row.destination).lastDeliveredAt = iso(row.delivered_at);
    of(row.destination).lastFailedAt = iso(row.failed_at);
  }
  // p50 and p95: the nearest-rank duration among the destination's latest attempts, one query each.
  const percentiles = timed.filter((row) => row.timed > 0);
  if (percentiles.length > 0) {
    const sampled = `SELECT duration_ms FROM (SELECT duration_ms FROM ledger_attempts
      WHERE call >= ?2 AND destination = ?1 AND duration_ms IS NOT NULL ORDER BY call DESC LIMIT ${LATENCY_SAMPLE})
      ORDER BY duration_ms LIMIT 1 OFFSET ?3`;
    const rank = (n: number, p: number) => Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1));
    const results = await db.batch(
      percentiles.flatMap((row) => {
        const n = Math.min(row.timed, LATENCY_SAMPLE);
        return [0.5, 0.95].map((p) => db.prepare(sampled).bind(row.destination, from, rank(n, p)));
      }),
    );
    percentiles.forEach((row, i) => {
      const value = (k: number) => (results[2 * i + k]!.results[0] as { duration_ms: number } | undefined)?.duration_ms;
      of(row.destination).p50Ms = value(0) ?? null;
      of(row.destination).p95Ms = value(1) ?? null;
    });
  }
  const waits = await held;
  return {
    since: iso(since)!,
    destinations,
    actions: Object.fromEntries(perAction.sort((a, b) => b.n - a.n).map((r) => [name(r.action), r.n])),
    ledger: { waiting: waits.records, ...(waits.since !== undefined && { waitingSince: waits.since }) },
  };
}
