import type { DeadLetter, DeadLetterReason } from "../queues/dead-letter.ts";
import type { Delivery } from "../queues/delivery.ts";
import { findDeliveries, type StoredDelivery } from "./deliveries.ts";
import { STATUS_CODES } from "./keys.ts";
import { namesOf, numberOf } from "./names.ts";
import { type Cursor, pageOf, Where } from "./paging.ts";
import { messagesOf } from "./rebuild.ts";
import { DELIVERY_COLUMNS, DELIVERY_FROM, deliveryIdsOf, iso, parsed } from "./rows.ts";
import { ensureLedger } from "./schema.ts";
import type { DeadLetterPage } from "./views.ts";

/**
 * Dead letters are deliveries with status dead (docs/ledger.md), shown in the record shape the dead-letter API has
 * always had: the list (newest first), one record, the next ones to replay, and deleting one.
 */

const DEAD = STATUS_CODES.dead;

export async function listDeadLetters(
  db: D1Database,
  options: { destination?: string | undefined; cursor?: Cursor | undefined; limit: number },
): Promise<DeadLetterPage> {
  await ensureLedger(db);
  const where = new Where().and(`d.status = ${DEAD}`);
  if (options.destination !== undefined) {
    const number = await numberOf(db, options.destination);
    if (number === undefined) return { items: [], truncated: false };
    where.and(`d.destination = ${where.param(number)}`);
  }
  if (options.cursor !== undefined) {
    const [deadAt, call, destination, part] = options.cursor;
    where.and(
      `(d.dead_at, d.call, d.destination, d.part) < (${where.param(deadAt)}, ${where.param(call)}, ${where.param(destination)}, ${where.param(part)})`,
    );
  }
  const rows = (
    await db
      .prepare(
        `SELECT ${DELIVERY_COLUMNS} FROM ${DELIVERY_FROM} ${where}
         ORDER BY d.dead_at DESC, d.call DESC, d.destination DESC, d.part DESC LIMIT ${where.param(options.limit + 1)}`,
      )
      .bind(...where.params)
      .all<StoredDelivery>()
  ).results;
  const ids = await deliveryIdsOf(db, rows);
  const name = await namesOf(
    db,
    rows.map((r) => r.destination),
  );
  return {
    ...pageOf(
      rows.map((row, i) => ({ row, id: ids[i]! })),
      options.limit,
      ({ row, id }) => ({
        deliveryId: id,
        destination: name(row.destination),
        reason: parsed<{ reason?: string }>(row.dead, {}).reason ?? "",
        deadAt: iso(row.dead_at)!,
        attempts: row.attempts,
        ...(row.last_status !== null && { lastStatus: row.last_status }),
      }),
      ({ row }) => [row.dead_at ?? 0, row.call, row.destination, row.part],
    ),
    truncated: false,
  };
}

/**
 * A dead letter as a record (the shape the dead-letter API answers with), or why the stored one cannot be read,
 * or null when there is no dead letter with that delivery id.
 */
export async function getDeadLetter(
  db: D1Database,
  payloads: R2Bucket | undefined,
  id: string,
): Promise<{ record: DeadLetter } | { unreadable: string } | null> {
  const [row] = await findDeliveries(db, [id]);
  if (row === null || row === undefined || row.status !== DEAD) return null;
  const [message] = await messagesOf(db, payloads, [row]);
  if (message === "unreadable" && row.stuck === null)
    return { unreadable: "its stored message is not one it can read" };
  const dead = parsed<{ reason?: string; detail?: string; source?: string }>(row.dead, {});
  const lastAttemptAt = await db
    .prepare("SELECT MAX(at) AS at FROM ledger_attempts WHERE call = ?1 AND destination = ?2 AND part = ?3")
    .bind(row.call, row.destination, row.part)
    .first<{ at: number | null }>();
  const deadAt = iso(row.dead_at ?? row.at)!;
  const name = (await namesOf(db, [row.destination]))(row.destination);
  return {
    record: {
      kind: "dead-letter",
      deliveryId: id,
      destination: name,
      reason: (dead.reason ?? "unreadable_message") as DeadLetterReason,
      detail: dead.detail ?? "",
      ...(row.last_status !== null && { lastStatus: row.last_status }),
      ...(row.last_error !== null && { lastError: row.last_error }),
      attempts: row.attempts,
      firstAttemptAt: iso(row.received_at)!,
      lastAttemptAt: iso(lastAttemptAt?.at) ?? deadAt,
      deadAt,
      source: dead.source === "queue" ? "queue" : "relay",
      ...(typeof message === "object" ? { message } : { raw: row.payload ?? "" }),
    },
  };
}

/**
 * The replayable dead letters to take on next (oldest first), of one destination when given. One whose message
 * cannot be rebuilt (its stored text unreadable or gone) is marked stuck on the way, so that the next call never
 * meets it again: a bulk replay always makes progress. It stays a dead letter, to read and delete.
 */
export async function nextDeadLetters(
  db: D1Database,
  payloads: R2Bucket | undefined,
  destination: string | undefined,
  limit: number,
): Promise<{ messages: Delivery[]; unreadable: string[]; more: boolean }> {
  await ensureLedger(db);
  const where = new Where().and(`d.status = ${DEAD}`).and("d.stuck IS NULL");
  if (destination !== undefined) {
    const number = await numberOf(db, destination);
    if (number === undefined) return { messages: [], unreadable: [], more: false };
    where.and(`d.destination = ${where.param(number)}`);
  }
  const rows = (
    await db
      .prepare(
        `SELECT ${DELIVERY_COLUMNS}, d.payload, c.claims, c.notifications FROM ${DELIVERY_FROM} ${where}
         ORDER BY d.dead_at, d.call, d.destination, d.part LIMIT ${where.param(limit + 1)}`,
      )
      .bind(...where.params)
      .all<StoredDelivery>()
  ).results;
  const taken = rows.slice(0, limit);
  const found = await messagesOf(db, payloads, taken);
  const ids = await deliveryIdsOf(db, taken);
  const messages: Delivery[] = [];
  const unreadable: StoredDelivery[] = [];
  taken.forEach((row, i) => {
    const message = found[i];
    if (typeof message === "object") messages.push(message);
    else unreadable.push(row);
  });
  if (unreadable.length > 0) {
    await db
      .prepare(
        `UPDATE ledger_deliveries SET stuck = 1 FROM json_each(?1) j WHERE status = ${DEAD}
         AND call = j.value->>0 AND destination = j.value->>1 AND part = j.value->>2`,
      )
      .bind(JSON.stringify(unreadable.map((r) => [r.call, r.destination, r.part])))
      .run();
  }
  return {
    messages,
    unreadable: unreadable.map((row) => ids[taken.indexOf(row)]!),
    more: rows.length > limit,
  };
}

/** How many dead letters each destination has, whatever their age (one read of the dead letters' own index). */
export async function deadLetterCounts(db: D1Database): Promise<Record<string, number>> {
  await ensureLedger(db);
  const rows = (
    await db
      .prepare(
        `SELECT destination, COUNT(*) AS n FROM ledger_deliveries INDEXED BY ledger_dead_letters_by_destination
         WHERE status = ${DEAD} GROUP BY destination`,
      )
      .all<{ destination: number; n: number }>()
  ).results;
  const name = await namesOf(
    db,
    rows.map((r) => r.destination),
  );
  return Object.fromEntries(rows.map((r) => [name(r.destination), r.n]));
}

/** Drops one dead letter, readable or not; false when there is no dead letter with that id. */
export async function deleteDeadLetter(db: D1Database, id: string): Promise<boolean> {
  const [row] = await findDeliveries(db, [id]);
  if (row === null || row === undefined || row.status !== DEAD) return false;
  await db.batch([
    db
      .prepare("DELETE FROM ledger_attempts WHERE call = ?1 AND destination = ?2 AND part = ?3")
      .bind(row.call, row.destination, row.part),
    db
      .prepare(`DELETE FROM ledger_deliveries WHERE call = ?1 AND destination = ?2 AND part = ?3 AND status = ${DEAD}`)
      .bind(row.call, row.destination, row.part),
  ]);
  return true;
}

/** Drops the dead letters among `keys` ([call, destination, part]) with their attempts (a bulk delete); how many. */
export async function deleteDeadLetterKeys(db: D1Database, keys: readonly [number, number, number][]): Promise<number> {
  if (keys.length === 0) return 0;
  const dead = `SELECT value->>0, value->>1, value->>2 FROM json_each(?1)`;
  const list = JSON.stringify(keys);
  const [, deleted] = await db.batch([
    db
      .prepare(
        `DELETE FROM ledger_attempts WHERE (call, destination, part) IN (SELECT call, destination, part
           FROM ledger_deliveries WHERE (call, destination, part) IN (${dead}) AND status = ${DEAD})`,
      )
      .bind(list),
    db
      .prepare(`DELETE FROM ledger_deliveries WHERE (call, destination, part) IN (${dead}) AND status = ${DEAD}`)
      .bind(list),
  ]);
  return deleted!.meta.changes;
}
