import { describe } from "../errors.ts";
import { log } from "../log.ts";
import { readClaim } from "../payloads.ts";
import type { Claim } from "../queues/claim.ts";
import { STATUS_CODES, seqAt, statusOfCode } from "./keys.ts";
import { namesOf, numberOf } from "./names.ts";
import { type Cursor, pageOf, Where } from "./paging.ts";
import {
  ATTEMPT_COLUMNS,
  type AttemptRow,
  attemptsBy,
  DELIVERY_COLUMNS,
  DELIVERY_FROM,
  type DeliveryRow,
  deliveryViews,
  iso,
  type NotificationEntry,
  type PlanEntry,
  parsed,
  RECEIVED_AT,
} from "./rows.ts";
import { ensureLedger } from "./schema.ts";
import { joinedParts, readText } from "./texts.ts";
import type { CallStatus, CallSummary, CallTrace, Page } from "./views.ts";

/**
 * Calls in the ledger (docs/ledger.md): a call's trace, the list of calls, and the few questions the rest of the
 * relay asks of one (is it on record, when was it accepted, what did the sender send). A call counts as on record
 * once its record of acceptance is written (`attempt` set); rows that attempts made first are not listed.
 */

interface CallRow {
  seq: number;
  id: string;
  received_at: number;
  attempt: string | null;
  notifications: string | null;
  plan: string | null;
  duplicates: number | null;
}

const CALL_COLUMNS = `c.seq, c.id, ${RECEIVED_AT} AS received_at, c.attempt, c.notifications, c.plan, c.duplicates`;

/** The whole trace of one call, or null when the ledger has no such call. */
export async function getCall(db: D1Database, id: string): Promise<CallTrace | null> {
  await ensureLedger(db);
  const seq = "(SELECT seq FROM ledger_calls WHERE id = ?1)";
  const [calls, senders, deliveries, attempts] = await db.batch([
    db.prepare(`SELECT ${CALL_COLUMNS} FROM ledger_calls c WHERE c.id = ?1 AND c.attempt IS NOT NULL`).bind(id),
    db
      .prepare(`SELECT at, attempt, outcome FROM ledger_sender_attempts WHERE call = ${seq} ORDER BY at, outcome`)
      .bind(id),
    db.prepare(`SELECT ${DELIVERY_COLUMNS} FROM ${DELIVERY_FROM} WHERE d.call = ${seq}`).bind(id),
    db
      .prepare(
        `SELECT ${ATTEMPT_COLUMNS} FROM ledger_attempts WHERE call = ${seq} ORDER BY destination, part, run, attempt`,
      )
      .bind(id),
  ]);
  const call = calls!.results[0] as CallRow | undefined;
  if (call === undefined) return null;
  const notifications = parsed<NotificationEntry[]>(call.notifications, []);
  const name = await namesOf(
    db,
    notifications.flatMap((n) => [n[0], ...n[3], ...n[4]]),
  );
  const views = await deliveryViews(
    db,
    deliveries!.results as DeliveryRow[],
    attemptsBy(attempts!.results as AttemptRow[]),
  );
  const others = senders!.results as { at: number; attempt: string }[];
  return {
    id: call.id,
    receivedAt: iso(call.received_at)!,
    senderAttempts: [{ at: call.received_at, attempt: call.attempt! }, ...others]
      .sort((a, b) => a.at - b.at)
      .map((a) => parseAttempt(a.attempt)),
    ...(call.duplicates !== null && call.duplicates > 0 && { duplicates: call.duplicates }),
    notifications: notifications.map((n, index) => ({
      index,
      action: name(n[0]),
      warehouse: n[1],
      key: n[2],
      routes: n[3].map(name),
      destinations: n[4].map(name),
    })),
    deliveries: views.sort((a, b) => (a.deliveryId < b.deliveryId ? -1 : a.deliveryId > b.deliveryId ? 1 : 0)),
  };
}

function parseAttempt(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export interface CallFilter {
  key?: string | undefined;
  action?: string | undefined;
  destination?: string | undefined;
  status?: CallStatus | undefined;
  since?: number | undefined;
  until?: number | undefined;
  limit: number;
  cursor?: Cursor | undefined;
}

/** Calls newest first, by business key, Action, destination, status and time. */
export async function listCalls(db: D1Database, filter: CallFilter): Promise<Page<CallSummary>> {
  await ensureLedger(db);
  const where = new Where().and("c.attempt IS NOT NULL");
  const worst = "(SELECT MAX(status) FROM ledger_deliveries d WHERE d.call = c.seq)";
  if (filter.key !== undefined)
    where.and(`c.seq IN (SELECT call FROM ledger_keys WHERE key = ${where.param(filter.key)})`);
  for (const [column, table, name] of [
    ["action", "ledger_actions", filter.action],
    ["destination", "ledger_deliveries", filter.destination],
  ] as const) {
    if (name === undefined) continue;
    const number = await numberOf(db, name);
    if (number === undefined) return { items: [] };
    where.and(`c.seq IN (SELECT call FROM ${table} WHERE ${column} = ${where.param(number)})`);
  }
  if (filter.since !== undefined) where.and(`c.seq >= ${where.param(seqAt(filter.since))}`);
  if (filter.until !== undefined) where.and(`c.seq < ${where.param(seqAt(filter.until))}`);
  if (filter.cursor !== undefined) where.and(`c.seq < ${where.param(filter.cursor[0])}`);
  if (filter.status === "no_deliveries") where.and(`${worst} IS NULL`);
  else if (filter.status !== undefined) where.and(`${worst} = ${STATUS_CODES[filter.status]}`);
  const rows = (
    await db
      .prepare(
        `SELECT ${CALL_COLUMNS}, ${worst} AS worst FROM ledger_calls c ${where} ORDER BY c.seq DESC
         LIMIT ${where.param(filter.limit + 1)}`,
      )
      .bind(...where.params)
      .all<CallRow & { worst: number | null }>()
  ).results;
  const entries = rows.map((row) => parsed<NotificationEntry[]>(row.notifications, []));
  const name = await namesOf(
    db,
    entries.flat().map((n) => n[0]),
  );
  return pageOf(
    rows.map((row, i) => ({ row, notifications: entries[i]! })),
    filter.limit,
    ({ row, notifications }) => ({
      id: row.id,
      receivedAt: iso(row.received_at)!,
      actions: [...new Set(notifications.map((n) => name(n[0])))],
      keys: [...new Set(notifications.flatMap((n) => (n[2] === null ? [] : [n[2]])))],
      deliveries: parsed<PlanEntry[]>(row.plan, []).length,
      status: row.worst === null ? "no_deliveries" : statusOfCode(row.worst),
    }),
    ({ row }) => [row.seq],
  );
}

/** Whether the ledger holds a call with this Id (the door's dedupe for sender retries). */
export async function hasCall(db: D1Database, id: string): Promise<boolean> {
  await ensureLedger(db);
  return (
    (await db.prepare("SELECT 1 AS found FROM ledger_calls WHERE id = ?1 AND attempt IS NOT NULL").bind(id).first()) !==
    null
  );
}

/**
 * When the ledger's calls with these Ids were accepted (ms), for those it holds: a delivery of an Id on record
 * from another acceptance is a call sent again (src/delivery/consumer.ts).
 */
export async function acceptedAt(db: D1Database, ids: readonly string[]): Promise<Map<string, number>> {
  const unique = [...new Set(ids)];
  if (unique.length === 0) return new Map();
  await ensureLedger(db);
  const rows = (
    await db
      .prepare(
        `SELECT c.id, ${RECEIVED_AT} AS received_at FROM ledger_calls c
         WHERE c.id IN (SELECT value FROM json_each(?1)) AND c.attempt IS NOT NULL`,
      )
      .bind(JSON.stringify(unique))
      .all<{ id: string; received_at: number }>()
  ).results;
  return new Map(rows.map((row) => [row.id, row.received_at]));
}

/** When the newest call on record was accepted, or null for an empty ledger (the sender_silent check). */
export async function lastCallAt(db: D1Database): Promise<number | null> {
  await ensureLedger(db);
  const row = await db
    .prepare(`SELECT ${RECEIVED_AT} AS at FROM ledger_calls c WHERE c.attempt IS NOT NULL ORDER BY c.seq DESC LIMIT 1`)
    .first<{ at: number }>();
  return row?.at ?? null;
}

/**
 * A call's text as the sender wrote it (each claimed notification still its mark), or null when the ledger does
 * not hold it (not yet, or any more) or cannot read it (logged).
 */
export async function getCallText(db: D1Database, payloads: R2Bucket | undefined, id: string): Promise<string | null> {
  await ensureLedger(db);
  const texts = await callTexts(db, payloads, [id]);
  return texts.get(id) ?? null;
}

/** The texts of calls by their Ids (null for one the ledger cannot give), in as few reads as it takes. */
export async function callTexts(
  db: D1Database,
  payloads: R2Bucket | undefined,
  ids: readonly string[],
): Promise<Map<string, string | null>> {
  const unique = [...new Set(ids)];
  const out = new Map<string, string | null>();
  if (unique.length === 0) return out;
  const list = JSON.stringify(unique);
  const [places, parts, claimed] = await db.batch([
    db
      .prepare(
        `SELECT c.id, o.key, c.text_at, c.text_bytes FROM ledger_calls c JOIN ledger_text_objects o ON o.id = c.text_object
         WHERE c.id IN (SELECT value FROM json_each(?1))`,
      )
      .bind(list),
    db
      .prepare(
        `SELECT c.id, p.part, p.parts, p.chunk FROM ledger_text_parts p JOIN ledger_calls c ON c.seq = p.call
         WHERE c.id IN (SELECT value FROM json_each(?1)) ORDER BY c.id, p.part`,
      )
      .bind(list),
    db
      .prepare(
        `SELECT c.id, c.claims->>'$.text' AS claim FROM ledger_calls c
         WHERE c.id IN (SELECT value FROM json_each(?1)) AND c.claims->>'$.text' IS NOT NULL`,
      )
      .bind(list),
  ]);
  // A call too large for its record kept its text in PAYLOADS as a claim.
  await Promise.all(
    (claimed!.results as { id: string; claim: string }[]).map(async (row) => {
      try {
        out.set(row.id, await readClaim(payloads, JSON.parse(row.claim) as Claim));
      } catch (error) {
        log("error", "call_text_unreadable", { callId: row.id, error: describe(error) });
        out.set(row.id, null);
      }
    }),
  );
  await Promise.all(
    (places!.results as { id: string; key: string; text_at: number; text_bytes: number }[]).map(async (row) => {
      out.set(row.id, await readText(payloads, row.key, { at: row.text_at, bytes: row.text_bytes }, row.id));
    }),
  );
  const byCall = new Map<string, { parts: number; chunk: unknown }[]>();
  for (const row of parts!.results as { id: string; parts: number; chunk: unknown }[]) {
    byCall.set(row.id, [...(byCall.get(row.id) ?? []), row]);
  }
  for (const [id, rows] of byCall) if (!out.get(id)) out.set(id, joinedParts(id, rows));
  return out;
}
