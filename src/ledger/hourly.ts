import { LATENCY_BOUNDS } from "./migrations.ts";
import { namesOf, numberOf } from "./names.ts";
import { ensureLedger } from "./schema.ts";

/**
 * Hourly figures per destination (docs/ledger.md, "Hourly figures"): attempts delivered, retried and dead-lettered
 * in each hour, and the p95 of their latency, from ledger_hourly (one row per destination and hour, kept by a
 * trigger as attempts are written; src/ledger/migrations.ts). A range of hours is a range of its primary key, so a
 * week of a destination is at most 168 rows whatever the traffic.
 */

export interface HourFigures {
  /** The hour's start, ISO-8601. */
  hour: string;
  delivered: number;
  retried: number;
  dead: number;
  /** The upper bound of the latency bucket holding the 95th percentile of the hour's answered attempts (ms). */
  p95Ms: number | null;
}

const HOUR = 3_600_000;
const BUCKETS = LATENCY_BOUNDS.length + 1;

/** The bucket bound at or above the `q` quantile of a latency histogram; the last bucket answers its lower bound. */
export function quantileOf(counts: readonly number[], q: number): number | null {
  const total = counts.reduce((sum, n) => sum + n, 0);
  if (total === 0) return null;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (const [i, n] of counts.entries()) {
    seen += n;
    if (seen >= rank) return LATENCY_BOUNDS[i] ?? LATENCY_BOUNDS.at(-1)!;
  }
  return LATENCY_BOUNDS.at(-1)!;
}

/**
 * Every hour from the one holding `since` to the one holding `until`, oldest first, for each destination that has
 * figures in them (or those asked for), each hour present (zeros where nothing was attempted).
 */
export async function hourly(
  db: D1Database,
  options: { since: number; until: number; destinations?: readonly string[] },
): Promise<Record<string, HourFigures[]>> {
  await ensureLedger(db);
  const first = Math.floor(options.since / HOUR);
  const last = Math.floor(options.until / HOUR);
  // A destination the ledger has never named has no figures: it is asked for as no number at all.
  const asked =
    options.destinations === undefined
      ? undefined
      : (await Promise.all(options.destinations.map((d) => numberOf(db, d)))).filter((n) => n !== undefined);
  const filter = asked === undefined ? "" : " AND destination IN (SELECT value FROM json_each(?3))";
  const statement = db
    .prepare(
      `SELECT hour, destination, delivered, retried, dead, ${Array.from({ length: BUCKETS }, (_, i) => `l${i}`).join(", ")}
       FROM ledger_hourly WHERE hour BETWEEN ?1 AND ?2${filter} ORDER BY hour`,
    )
    .bind(first, last, ...(asked === undefined ? [] : [JSON.stringify(asked)]));
  const { results } = await statement.all<Record<string, number>>();
  const name = await namesOf(
    db,
    results.map((r) => r.destination!),
  );
  const out: Record<string, HourFigures[]> = {};
  const empty = () =>
    Array.from({ length: last - first + 1 }, (_, i) => ({
      hour: new Date((first + i) * HOUR).toISOString(),
      delivered: 0,
      retried: 0,
      dead: 0,
      p95Ms: null,
    }));
  for (const destination of options.destinations ?? []) out[destination] = empty();
  for (const row of results) {
    const series = (out[name(row.destination!)] ??= empty());
    series[row.hour! - first] = {
      hour: new Date(row.hour! * HOUR).toISOString(),
      delivered: row.delivered!,
      retried: row.retried!,
      dead: row.dead!,
      p95Ms: quantileOf(
        Array.from({ length: BUCKETS }, (_, i) => row[`l${i}`]!),
        0.95,
      ),
    };
  }
  return out;
}
