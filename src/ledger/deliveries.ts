import type { Delivery } from "../queues/delivery.ts";
import { callIdsIn, partOf, STATUS_CODES, seqAt } from "./keys.ts";
import { numberOf, numbersOf } from "./names.ts";
import { type Cursor, pageOf, Where } from "./paging.ts";
import { messagesOf } from "./rebuild.ts";
import {
  ATTEMPT_COLUMNS,
  type AttemptRow,
  attemptsBy,
  DELIVERY_COLUMNS,
  DELIVERY_FROM,
  type DeliveryRow,
  deliveryIdsOf,
  deliveryViews,
} from "./rows.ts";
import { ensureLedger } from "./schema.ts";
import type { DeliveryStatus, DeliveryView, Page } from "./views.ts";

/**
 * Deliveries in the ledger (docs/ledger.md): the list, one delivery with its attempts and the message it would be
 * sent again with, and marking deliveries sent again. Newest first means by their call's time (its seq), then
 * destination and part.
 */

export interface DeliveryFilter {
  destination?: string | undefined;
  status?: DeliveryStatus | undefined;
  since?: number | undefined;
  until?: number | undefined;
  limit: number;
  cursor?: Cursor | undefined;
}

/**
 * The WHERE, ORDER BY and FROM of deliveries matching `filter` (its cursor included); undefined when the
 * destination was never named, so that nothing matches.
 */
async function matching(db: D1Database, filter: Omit<DeliveryFilter, "limit">) {
  const where = new Where();
  let order = "d.call DESC, d.destination DESC, d.part DESC";
  if (filter.destination !== undefined) {
    const number = await numberOf(db, filter.destination);
    if (number === undefined) return undefined;
    where.and(`d.destination = ${where.param(number)}`);
    order = "d.call DESC, d.part DESC";
  }
  if (filter.status !== undefined) where.and(`d.status = ${STATUS_CODES[filter.status]}`);
  // Unsettled ones (retrying, held, dead, pending) are few: the index of them, not the whole ledger in order. Its
  // own condition, spelled out, is what lets SQLite use it.
  const unsettled = filter.status !== undefined && filter.status !== "delivered" && filter.destination === undefined;
  if (unsettled) where.and("d.status > 0");
  const from = unsettled
    ? DELIVERY_FROM.replace("ledger_deliveries d", "ledger_deliveries d INDEXED BY ledger_deliveries_unsettled")
    : DELIVERY_FROM;
  if (filter.since !== undefined) where.and(`d.call >= ${where.param(seqAt(filter.since))}`);
  if (filter.until !== undefined) where.and(`d.call < ${where.param(seqAt(filter.until))}`);
  if (filter.cursor !== undefined) {
    const [call, destination, part] = filter.cursor;
    where.and(
      `(d.call, d.destination, d.part) < (${where.param(call)}, ${where.param(destination)}, ${where.param(part)})`,
    );
  }
  return { where, order, from };
}

/** Deliveries newest first (by when their call was accepted), by destination, status and time. */
export async function listDeliveries(db: D1Database, filter: DeliveryFilter): Promise<Page<DeliveryView>> {
  await ensureLedger(db);
  const query = await matching(db, filter);
  if (query === undefined) return { items: [] };
  const { where, order, from } = query;
  const rows = (
    await db
      .prepare(
        `SELECT ${DELIVERY_COLUMNS} FROM ${from} ${where} ORDER BY ${order} LIMIT ${where.param(filter.limit + 1)}`,
      )
      .bind(...where.params)
      .all<DeliveryRow>()
  ).results;
  const views = await deliveryViews(db, rows);
  return pageOf(
    rows.map((row, i) => ({ row, view: views[i]! })),
    filter.limit,
    ({ view }) => view,
    ({ row }) => [row.call, row.destination, row.part],
  );
}

/** How many deliveries match `filter` (a bulk action's preview), counted from the same index its list reads. */
export async function countDeliveries(
  db: D1Database,
  filter: Omit<DeliveryFilter, "limit" | "cursor">,
): Promise<number> {
  await ensureLedger(db);
  const query = await matching(db, filter);
  if (query === undefined) return 0;
  const { where, from } = query;
  const row = await db
    .prepare(`SELECT COUNT(*) AS n FROM ${from} ${where}`)
    .bind(...where.params)
    .first<{ n: number }>();
  return row?.n ?? 0;
}

/**
 * The next `limit` deliveries matching `filter` after `cursor`, newest first, with what sending each again needs
 * (a bulk action's chunk), and the cursor after them (undefined when none are left).
 */
export async function nextMatching(
  db: D1Database,
  payloads: R2Bucket | undefined,
  filter: Omit<DeliveryFilter, "limit" | "cursor">,
  limit: number,
  cursor: Cursor | undefined,
): Promise<{
  ids: string[];
  /** Each one's key in ledger_deliveries: [call, destination, part]. */
  keys: [number, number, number][];
  messages: (Delivery | "unreadable" | undefined)[];
  cursor: Cursor | undefined;
}> {
  await ensureLedger(db);
  const query = await matching(db, { ...filter, ...(cursor !== undefined && { cursor }) });
  if (query === undefined) return { ids: [], keys: [], messages: [], cursor: undefined };
  const { where, order, from } = query;
  const rows = (
    await db
      .prepare(
        `SELECT ${DELIVERY_COLUMNS}, d.payload, c.claims, c.notifications FROM ${from} ${where} ORDER BY ${order}
         LIMIT ${where.param(limit)}`,
      )
      .bind(...where.params)
      .all<StoredDelivery>()
  ).results;
  const last = rows.at(-1);
  return {
    ids: await deliveryIdsOf(db, rows),
    keys: rows.map((r) => [r.call, r.destination, r.part]),
    messages: await messagesOf(db, payloads, rows),
    cursor: rows.length < limit || last === undefined ? undefined : [last.call, last.destination, last.part],
  };
}

export type StoredDelivery = DeliveryRow & {
  payload: string | null;
  claims: string | null;
  notifications: string | null;
};

/**
 * The rows of deliveries by their ids (with what rebuilding their messages needs), in the order asked, null for
 * one the ledger does not have: each id is looked up among the deliveries of the calls it can belong to.
 */
export async function findDeliveries(db: D1Database, ids: readonly string[]): Promise<(StoredDelivery | null)[]> {
  await ensureLedger(db);
  if (ids.length === 0) return [];
  const calls = [...new Set(ids.flatMap(callIdsIn))];
  const rows = (
    await db
      .prepare(
        `SELECT ${DELIVERY_COLUMNS}, d.payload, c.claims, c.notifications FROM ${DELIVERY_FROM}
         WHERE c.id IN (SELECT value FROM json_each(?1))`,
      )
      .bind(JSON.stringify(calls))
      .all<StoredDelivery>()
  ).results;
  const found = await deliveryIdsOf(db, rows);
  return ids.map((id) => rows[found.indexOf(id)] ?? null);
}

/** One delivery with its attempts and the notifications it carries, and the message it is sent again with. */
export async function getDelivery(
  db: D1Database,
  payloads: R2Bucket | undefined,
  id: string,
): Promise<(DeliveryView & { message?: Delivery; unreadable?: true }) | null> {
  const [row] = await findDeliveries(db, [id]);
  if (row === null || row === undefined) return null;
  const attempts = (
    await db
      .prepare(
        `SELECT ${ATTEMPT_COLUMNS} FROM ledger_attempts WHERE call = ?1 AND destination = ?2 AND part = ?3
         ORDER BY run, attempt`,
      )
      .bind(row.call, row.destination, row.part)
      .all<AttemptRow>()
  ).results;
  const [view] = await deliveryViews(db, [row], attemptsBy(attempts));
  const [message] = await messagesOf(db, payloads, [row]);
  if (message === "unreadable") return { ...view!, unreadable: true };
  return message === undefined ? view! : { ...view!, message };
}

/**
 * The ledger's side of a resend: each delivery is pending again in its new run (only forward: a row already in a
 * later run stays). Should this fail, the first attempt of the new run writes the same.
 */
export async function markResent(db: D1Database, deliveries: readonly Delivery[], now: number): Promise<void> {
  if (deliveries.length === 0) return;
  await ensureLedger(db);
  const numbers = await numbersOf(
    db,
    deliveries.map((d) => d.destination),
  );
  const rows = deliveries.flatMap((d) => {
    const part = partOf(d.deliveryId, d.callId, d.destination);
    return part === null ? [] : [[d.callId, numbers.get(d.destination), part, d.run ?? 0, now]];
  });
  await db
    .prepare(
      `UPDATE ledger_deliveries SET status = ${STATUS_CODES.pending}, run = j.value->>3, attempts = 0, at = j.value->>4,
         last_status = NULL, last_error = NULL, dead_at = NULL, dead = NULL, stuck = NULL, held_reason = NULL
       FROM json_each(?1) j
       WHERE ledger_deliveries.call = (SELECT seq FROM ledger_calls WHERE id = j.value->>0)
         AND ledger_deliveries.destination = j.value->>1 AND ledger_deliveries.part = j.value->>2
         AND ledger_deliveries.run < j.value->>3`,
    )
    .bind(JSON.stringify(rows))
    .run();
}
