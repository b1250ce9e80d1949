import { ensureLedger } from "./schema.ts";

/**
 * Retention (docs/ledger.md): a Cron Trigger removes what is older than LEDGER_RETENTION_DAYS, in bounded
 * chunks so that one run stays short whatever the backlog. Delivered deliveries go after the retention, dead
 * letters after DEAD_LETTER_TTL_SECONDS (or when replayed or deleted), deliveries still on their way only three
 * days after the retention (a retried delivery writes its row again should it outlive that), and a call once
 * it has no deliveries left and is past the retention itself.
 */

export const PRUNE_CHUNK = 500;
export const PRUNE_CHUNKS = 40;
const DAY = 86_400_000;

export interface Pruned {
  deliveries: number;
  calls: number;
  /** True when a chunk limit was reached: the next run goes on. */
  more: boolean;
}

export async function pruneLedger(
  db: D1Database,
  options: { retentionDays: number; deadLetterTtlSeconds: number; now: number; chunks?: number },
): Promise<Pruned> {
  const limit = options.chunks ?? PRUNE_CHUNKS;
  await ensureLedger(db);
  const cutoff = options.now - options.retentionDays * DAY;
  const deadCutoff = options.now - options.deadLetterTtlSeconds * 1000;
  const staleCutoff = cutoff - 3 * DAY;
  const expired = `SELECT id FROM deliveries WHERE (status = 'delivered' AND received_at < ?1)
    OR (status = 'dead' AND dead_at < ?2) OR (status NOT IN ('delivered', 'dead') AND received_at < ?3)
    ORDER BY received_at, id LIMIT ?4`;
  const done = `SELECT id FROM calls c WHERE received_at < ?1
    AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.call_id = c.id) ORDER BY received_at, id LIMIT ?2`;
  const pruned: Pruned = { deliveries: 0, calls: 0, more: false };
  let chunks = 0;
  for (; chunks < limit; chunks++) {
    const params = [cutoff, deadCutoff, staleCutoff, PRUNE_CHUNK];
    const [, deleted] = await db.batch([
      db.prepare(`DELETE FROM attempts WHERE delivery_id IN (${expired})`).bind(...params),
      db.prepare(`DELETE FROM deliveries WHERE id IN (${expired})`).bind(...params),
    ]);
    pruned.deliveries += deleted!.meta.changes;
    if (deleted!.meta.changes < PRUNE_CHUNK) break;
  }
  for (; chunks < limit; chunks++) {
    const [, , , deleted] = await db.batch([
      db.prepare(`DELETE FROM notifications WHERE call_id IN (${done})`).bind(cutoff, PRUNE_CHUNK),
      db.prepare(`DELETE FROM sender_attempts WHERE call_id IN (${done})`).bind(cutoff, PRUNE_CHUNK),
      db.prepare(`DELETE FROM call_text WHERE call_id IN (${done})`).bind(cutoff, PRUNE_CHUNK),
      db.prepare(`DELETE FROM calls WHERE id IN (${done})`).bind(cutoff, PRUNE_CHUNK),
    ]);
    pruned.calls += deleted!.meta.changes;
    if (deleted!.meta.changes < PRUNE_CHUNK) break;
  }
  pruned.more = chunks >= limit;
  return pruned;
}
