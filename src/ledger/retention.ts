import { describe } from "../errors.ts";
import { log } from "../log.ts";
import type { Claim } from "../queues/claim.ts";
import { STATUS_CODES, seqAt } from "./keys.ts";
import { type NotificationEntry, parsed } from "./rows.ts";
import { ensureLedger } from "./schema.ts";
import { dayOf } from "./texts.ts";

/**
 * Retention (docs/ledger.md): a Cron Trigger removes what is older than LEDGER_RETENTION_DAYS, in bounded chunks so
 * that one run stays short whatever the backlog. Delivered deliveries go after the retention, dead letters after
 * DEAD_LETTER_TTL_SECONDS (or when replayed or deleted), deliveries still on their way only three days after the
 * retention (a retried delivery writes its row again should it outlive that), and a call once it has no
 * deliveries left and is past the retention itself, with what it kept in R2 (its notifications' claims). The R2
 * objects of call texts go by their day, three days after the retention; hourly figures after the retention or
 * HOURLY_DAYS, whichever is longer.
 */

export const PRUNE_CHUNK = 500;
export const PRUNE_CHUNKS = 40;
const DAY = 86_400_000;
const { delivered, dead } = STATUS_CODES;

export interface Pruned {
  deliveries: number;
  calls: number;
  /** R2 objects deleted: claims of the calls removed, and text objects past their day. */
  objects: number;
  /** True when a chunk limit was reached: the next run goes on. */
  more: boolean;
}

export async function pruneLedger(
  db: D1Database,
  payloads: R2Bucket | undefined,
  options: { retentionDays: number; deadLetterTtlSeconds: number; now: number; chunks?: number },
): Promise<Pruned> {
  const limit = options.chunks ?? PRUNE_CHUNKS;
  await ensureLedger(db);
  const cutoff = options.now - options.retentionDays * DAY;
  const deadCutoff = options.now - options.deadLetterTtlSeconds * 1000;
  const staleCutoff = cutoff - 3 * DAY;
  const pruned: Pruned = { deliveries: 0, calls: 0, objects: 0, more: false };
  let chunks = 0;
  const expired = [
    { where: `status = ${delivered} AND call < ?1`, bound: seqAt(cutoff) },
    { where: `status = ${dead} AND dead_at < ?1`, bound: deadCutoff },
    { where: `status NOT IN (${delivered}, ${dead}) AND call < ?1`, bound: seqAt(staleCutoff) },
  ];
  for (const { where, bound } of expired) {
    for (; chunks < limit; chunks++) {
      const rows = `SELECT call, destination, part FROM ledger_deliveries WHERE ${where} LIMIT ${PRUNE_CHUNK}`;
      const [, deleted] = await db.batch([
        db.prepare(`DELETE FROM ledger_attempts WHERE (call, destination, part) IN (${rows})`).bind(bound),
        db.prepare(`DELETE FROM ledger_deliveries WHERE (call, destination, part) IN (${rows})`).bind(bound),
      ]);
      pruned.deliveries += deleted!.meta.changes;
      if (deleted!.meta.changes < PRUNE_CHUNK) break;
    }
  }
  for (; chunks < limit; chunks++) {
    const done = (
      await db
        .prepare(
          `SELECT seq, notifications, claims FROM ledger_calls c WHERE seq < ?1
           AND NOT EXISTS (SELECT 1 FROM ledger_deliveries d WHERE d.call = c.seq) ORDER BY seq LIMIT ${PRUNE_CHUNK}`,
        )
        .bind(seqAt(cutoff))
        .all<{ seq: number; notifications: string | null; claims: string | null }>()
    ).results;
    if (done.length === 0) break;
    const claims = done.flatMap((c) => {
      const kept = parsed<{ text?: Claim; n?: Claim[] }>(c.claims, {});
      return [...(kept.text === undefined ? [] : [kept.text.key]), ...(kept.n ?? []).map((claim) => claim.key)];
    });
    pruned.objects += await deleteObjects(payloads, claims);
    const seqs = JSON.stringify(done.map((c) => c.seq));
    const entries = done.map((c) => ({ seq: c.seq, notifications: parsed<NotificationEntry[]>(c.notifications, []) }));
    const keys = JSON.stringify(
      entries.flatMap((c) => c.notifications.flatMap((n) => (n[2] === null ? [] : [[n[2], c.seq]]))),
    );
    const actions = JSON.stringify(entries.flatMap((c) => c.notifications.map((n) => [n[0], c.seq])));
    await db.batch([
      db
        .prepare("DELETE FROM ledger_keys WHERE (key, call) IN (SELECT value->>0, value->>1 FROM json_each(?1))")
        .bind(keys),
      db
        .prepare("DELETE FROM ledger_actions WHERE (action, call) IN (SELECT value->>0, value->>1 FROM json_each(?1))")
        .bind(actions),
      ...["ledger_sender_attempts", "ledger_text_parts"].map((table) =>
        db.prepare(`DELETE FROM ${table} WHERE call IN (SELECT value FROM json_each(?1))`).bind(seqs),
      ),
      db.prepare("DELETE FROM ledger_calls WHERE seq IN (SELECT value FROM json_each(?1))").bind(seqs),
    ]);
    pruned.calls += done.length;
    if (done.length < PRUNE_CHUNK) break;
  }
  for (; chunks < limit; chunks++) {
    const objects = (
      await db
        .prepare(`SELECT id, key FROM ledger_text_objects WHERE day < ?1 ORDER BY id LIMIT ${PRUNE_CHUNK}`)
        .bind(dayOf(staleCutoff))
        .all<{ id: number; key: string }>()
    ).results;
    if (objects.length === 0) break;
    pruned.objects += await deleteObjects(
      payloads,
      objects.map((o) => o.key),
    );
    await db
      .prepare("DELETE FROM ledger_text_objects WHERE id IN (SELECT value FROM json_each(?1))")
      .bind(JSON.stringify(objects.map((o) => o.id)))
      .run();
    if (objects.length < PRUNE_CHUNK) break;
  }
  // Hourly figures are a few rows a destination and hour: kept at least HOURLY_DAYS, so a week's picture stays whole.
  await db
    .prepare("DELETE FROM ledger_hourly WHERE hour < ?1")
    .bind(Math.floor((options.now - Math.max(options.retentionDays, HOURLY_DAYS) * DAY) / 3_600_000))
    .run();
  pruned.more = chunks >= limit;
  return pruned;
}

/** The least ledger_hourly keeps, in days, whatever LEDGER_RETENTION_DAYS says (src/ledger/hourly.ts). */
export const HOURLY_DAYS = 8;

/** Deletes R2 objects (a missing one is no error); throws when R2 fails, so that their rows stay for next time. */
async function deleteObjects(payloads: R2Bucket | undefined, keys: readonly string[]): Promise<number> {
  if (keys.length === 0 || payloads === undefined) return 0;
  try {
    for (let i = 0; i < keys.length; i += 1000) await payloads.delete(keys.slice(i, i + 1000));
  } catch (error) {
    log("error", "retention_objects_failed", { objects: keys.length, error: describe(error) });
    throw error;
  }
  return keys.length;
}
