import { describe } from "../errors.ts";
import { bodyAround, parseCall } from "../extend/envelope.ts";
import { log } from "../log.ts";
import type { DeadLetter, DeadLetterReason } from "../queues/dead-letter.ts";
import { type Delivery, readDelivery } from "../queues/delivery.ts";
import type { HeldReason } from "../queues/ledger.ts";
import { ensureLedger } from "./schema.ts";
import { unpackText } from "./text.ts";
import {
  type AttemptView,
  CALL_STATUS_RANK,
  type CallStatus,
  type CallSummary,
  type CallTrace,
  type DeadLetterPage,
  type DeliveryStatus,
  type DeliveryView,
  type DestinationStats,
  noDestinationStats,
  type Page,
  type Stats,
} from "./views.ts";

export * from "./views.ts";

/**
 * Reading the ledger: the trace of a call, lists of calls and deliveries, dead letters and the stats. One
 * function per question, each a fixed number of indexed queries (docs/ledger.md); the admin API and the
 * console both use these.
 */

/** A delivery's place in CALL_STATUS_RANK, in SQL: the worst of a call's deliveries is their MAX. */
const RANK_SQL = `CASE status ${CALL_STATUS_RANK.map((status, rank) => `WHEN '${status}' THEN ${rank}`).join(" ")} END`;

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
const json = <T>(text: string | null): T => (text === null ? ([] as T) : (JSON.parse(text) as T));

interface DeliveryRow {
  id: string;
  call_id: string;
  destination: string;
  status: DeliveryStatus;
  routes: string;
  indices: string;
  received_at: number;
  updated_at: number;
  run: number;
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  last_attempt_at: number | null;
  delivered_at: number | null;
  dead_reason: string | null;
  dead_detail: string | null;
  dead_at: number | null;
  dead_source: string | null;
  held_reason: string | null;
  payload?: string | null;
  replayable?: number;
}

interface AttemptRow {
  delivery_id: string;
  run: number;
  attempt: number;
  at: number;
  status: number | null;
  error: string | null;
  duration_ms: number | null;
  outcome: AttemptView["outcome"];
}

const DELIVERY_FIELDS = `id, call_id, destination, status, routes, indices, received_at, updated_at, run, attempts,
  last_status, last_error, last_attempt_at, delivered_at, dead_reason, dead_detail, dead_at, dead_source, held_reason`;

function deliveryView(row: DeliveryRow, attempts?: AttemptRow[]): DeliveryView {
  return {
    deliveryId: row.id,
    callId: row.call_id,
    destination: row.destination,
    status: row.status,
    routes: json(row.routes),
    notifications: json(row.indices),
    receivedAt: iso(row.received_at)!,
    updatedAt: iso(row.updated_at)!,
    attemptCount: row.attempts,
    ...(row.last_status !== null && { lastStatus: row.last_status }),
    ...(row.last_error !== null && { lastError: row.last_error }),
    ...(row.delivered_at !== null && { deliveredAt: iso(row.delivered_at)! }),
    ...(row.status === "dead" && {
      dead: {
        reason: row.dead_reason ?? "",
        detail: row.dead_detail ?? "",
        at: iso(row.dead_at) ?? "",
        source: row.dead_source ?? "relay",
      },
    }),
    ...(row.status === "held" && {
      held: { reason: (row.held_reason ?? "in_line") as HeldReason, since: iso(row.updated_at)! },
    }),
    ...(attempts !== undefined && { attempts: attempts.map(attemptView) }),
  };
}

function attemptView(row: AttemptRow): AttemptView {
  return {
    attempt: row.attempt,
    at: iso(row.at)!,
    ...(row.status !== null && { status: row.status }),
    ...(row.error !== null && { error: row.error }),
    ...(row.duration_ms !== null && { durationMs: row.duration_ms }),
    outcome: row.outcome,
    ...(row.run > 0 && { replay: true as const }),
  };
}

const ATTEMPT_FIELDS = "delivery_id, run, attempt, at, status, error, duration_ms, outcome";

/** Every attempt of the given deliveries, in order, grouped by delivery id. */
function groupAttempts(rows: AttemptRow[]): Map<string, AttemptRow[]> {
  const by = new Map<string, AttemptRow[]>();
  for (const row of rows) {
    let list = by.get(row.delivery_id);
    if (list === undefined) by.set(row.delivery_id, (list = []));
    list.push(row);
  }
  return by;
}

/** The whole trace of one call, or null when the ledger has no such call. */
export async function getCall(db: D1Database, id: string): Promise<CallTrace | null> {
  await ensureLedger(db);
  const [calls, attempts, notifications, deliveries, tries] = await db.batch([
    db.prepare("SELECT id, received_at FROM calls WHERE id = ?1").bind(id),
    db.prepare("SELECT attempt FROM sender_attempts WHERE call_id = ?1 ORDER BY at, outcome").bind(id),
    db
      .prepare(
        "SELECT idx, action, warehouse, key, routes, destinations FROM notifications WHERE call_id = ?1 ORDER BY idx",
      )
      .bind(id),
    db.prepare(`SELECT ${DELIVERY_FIELDS} FROM deliveries WHERE call_id = ?1 ORDER BY id`).bind(id),
    db
      .prepare(
        `SELECT ${ATTEMPT_FIELDS} FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE call_id = ?1)
         ORDER BY delivery_id, run, attempt`,
      )
      .bind(id),
  ]);
  const call = calls!.results[0] as { id: string; received_at: number } | undefined;
  if (call === undefined) return null;
  const byDelivery = groupAttempts(tries!.results as AttemptRow[]);
  return {
    id: call.id,
    receivedAt: iso(call.received_at)!,
    senderAttempts: (attempts!.results as { attempt: string }[]).map((row) => parseAttempt(row.attempt)),
    notifications: (
      notifications!.results as {
        idx: number;
        action: string;
        warehouse: string | null;
        key: string | null;
        routes: string;
        destinations: string;
      }[]
    ).map((n) => ({
      index: n.idx,
      action: n.action,
      warehouse: n.warehouse,
      key: n.key,
      routes: json(n.routes),
      destinations: json(n.destinations),
    })),
    deliveries: (deliveries!.results as DeliveryRow[]).map((row) => deliveryView(row, byDelivery.get(row.id) ?? [])),
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

/** A position in a newest-first list: the time and id of the last item shown. */
export interface Cursor {
  at: number;
  id: string;
}

export function encodeCursor(cursor: Cursor): string {
  return btoa(JSON.stringify([cursor.at, cursor.id]))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replaceAll("=", "");
}

/** undefined for a cursor this relay did not write. */
export function decodeCursor(text: string): Cursor | undefined {
  try {
    const [at, id] = JSON.parse(atob(text.replaceAll("-", "+").replaceAll("_", "/"))) as unknown[];
    if (typeof at === "number" && Number.isFinite(at) && typeof id === "string") return { at, id };
  } catch {
    // fall through
  }
  return undefined;
}

/** Calls newest first, by business key, Action, destination, status and time. */
export async function listCalls(db: D1Database, filter: CallFilter): Promise<Page<CallSummary>> {
  await ensureLedger(db);
  const where: string[] = [];
  const params: unknown[] = [];
  const param = (value: unknown) => {
    params.push(value);
    return `?${params.length}`;
  };
  if (filter.key !== undefined)
    where.push(`c.id IN (SELECT call_id FROM notifications WHERE key = ${param(filter.key)})`);
  if (filter.action !== undefined) {
    where.push(`c.id IN (SELECT call_id FROM notifications WHERE action = ${param(filter.action)})`);
  }
  if (filter.destination !== undefined) {
    where.push(`c.id IN (SELECT call_id FROM deliveries WHERE destination = ${param(filter.destination)})`);
  }
  if (filter.since !== undefined) where.push(`c.received_at >= ${param(filter.since)}`);
  if (filter.until !== undefined) where.push(`c.received_at < ${param(filter.until)}`);
  if (filter.cursor !== undefined) {
    const at = param(filter.cursor.at);
    where.push(`(c.received_at < ${at} OR (c.received_at = ${at} AND c.id < ${param(filter.cursor.id)}))`);
  }
  const rank = `(SELECT MAX(${RANK_SQL}) FROM deliveries d WHERE d.call_id = c.id)`;
  if (filter.status !== undefined) {
    const wanted = CALL_STATUS_RANK.indexOf(filter.status);
    where.push(wanted === 0 ? `${rank} IS NULL` : `${rank} = ${param(wanted)}`);
  }
  const sql = `SELECT c.id, c.received_at, c.actions, c.keys, c.delivery_count, ${rank} AS rank FROM calls c
    ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
    ORDER BY c.received_at DESC, c.id DESC LIMIT ${param(filter.limit + 1)}`;
  const rows = (
    await db
      .prepare(sql)
      .bind(...params)
      .all<{
        id: string;
        received_at: number;
        actions: string;
        keys: string;
        delivery_count: number;
        rank: number | null;
      }>()
  ).results;
  const items = rows.slice(0, filter.limit).map((row) => ({
    id: row.id,
    receivedAt: iso(row.received_at)!,
    actions: json<string[]>(row.actions),
    keys: json<string[]>(row.keys),
    deliveries: row.delivery_count,
    status: CALL_STATUS_RANK[row.rank ?? 0]!,
  }));
  const last = rows.length > filter.limit ? rows[filter.limit - 1] : undefined;
  return { items, ...(last !== undefined && { cursor: encodeCursor({ at: last.received_at, id: last.id }) }) };
}

export interface DeliveryFilter {
  destination?: string | undefined;
  status?: DeliveryStatus | undefined;
  since?: number | undefined;
  until?: number | undefined;
  limit: number;
  cursor?: Cursor | undefined;
}

/** Deliveries newest first (by when their call was accepted), by destination, status and time. */
export async function listDeliveries(db: D1Database, filter: DeliveryFilter): Promise<Page<DeliveryView>> {
  await ensureLedger(db);
  const where: string[] = [];
  const params: unknown[] = [];
  const param = (value: unknown) => {
    params.push(value);
    return `?${params.length}`;
  };
  if (filter.destination !== undefined) where.push(`destination = ${param(filter.destination)}`);
  if (filter.status !== undefined) where.push(`status = ${param(filter.status)}`);
  if (filter.since !== undefined) where.push(`received_at >= ${param(filter.since)}`);
  if (filter.until !== undefined) where.push(`received_at < ${param(filter.until)}`);
  if (filter.cursor !== undefined) {
    const at = param(filter.cursor.at);
    where.push(`(received_at < ${at} OR (received_at = ${at} AND id < ${param(filter.cursor.id)}))`);
  }
  const rows = (
    await db
      .prepare(
        `SELECT ${DELIVERY_FIELDS} FROM deliveries ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
         ORDER BY received_at DESC, id DESC LIMIT ${param(filter.limit + 1)}`,
      )
      .bind(...params)
      .all<DeliveryRow>()
  ).results;
  const items = rows.slice(0, filter.limit).map((row) => deliveryView(row));
  const last = rows.length > filter.limit ? rows[filter.limit - 1] : undefined;
  return { items, ...(last !== undefined && { cursor: encodeCursor({ at: last.received_at, id: last.id }) }) };
}

/** One delivery with its attempts and the notifications it carries (as the receiver gets them), or null. */
export async function getDelivery(db: D1Database, id: string): Promise<(DeliveryView & { message?: Delivery }) | null> {
  await ensureLedger(db);
  const [deliveries, attempts] = await db.batch([
    db.prepare(`SELECT ${DELIVERY_FIELDS}, payload, replayable FROM deliveries WHERE id = ?1`).bind(id),
    db.prepare(`SELECT ${ATTEMPT_FIELDS} FROM attempts WHERE delivery_id = ?1 ORDER BY run, attempt`).bind(id),
  ]);
  const row = deliveries!.results[0] as DeliveryRow | undefined;
  if (row === undefined) return null;
  const view = deliveryView(row, attempts!.results as AttemptRow[]);
  const message = (await messagesOf(db, [row])).get(row.id);
  return typeof message === "object" ? { ...view, message } : view;
}

/**
 * The message each delivery would be sent again with: the one kept with it (a dead letter's), else rebuilt from
 * its call's text and the notifications it holds, exactly as the door planned it. "unreadable" when what is kept
 * cannot be read; undefined when there is nothing to send (not attempted yet, or the call's text is gone).
 */
async function messagesOf(
  db: D1Database,
  rows: readonly DeliveryRow[],
): Promise<Map<string, Delivery | "unreadable" | undefined>> {
  const out = new Map<string, Delivery | "unreadable" | undefined>();
  const rebuild = rows.filter((row) => row.replayable === 1 && (row.payload ?? null) === null);
  // A call's text, or null when its stored bytes do not inflate (the delivery is then unreadable).
  const texts = new Map<string, string | null>();
  if (rebuild.length > 0) {
    const callIds = [...new Set(rebuild.map((row) => row.call_id))];
    // D1 binds at most 100 parameters per statement.
    const groups = Array.from({ length: Math.ceil(callIds.length / 90) }, (_, g) => callIds.slice(g * 90, g * 90 + 90));
    const results = await db.batch(
      groups.map((group) =>
        db
          .prepare(
            `SELECT call_id, part, parts, chunk FROM call_text WHERE call_id IN (${group.map((_, i) => `?${i + 1}`).join(", ")})
             ORDER BY call_id, part`,
          )
          .bind(...group),
      ),
    );
    const parts = results.flatMap(
      (r) => r.results as { call_id: string; part: number; parts: number; chunk: unknown }[],
    );
    for (const id of callIds) {
      const own = parts.filter((p) => p.call_id === id);
      if (own.length > 0 && own.length === own[0]!.parts) texts.set(id, joinedOrNull(id, own));
    }
  }
  for (const row of rows) {
    if (row.replayable !== 1) out.set(row.id, undefined);
    else if ((row.payload ?? null) !== null) out.set(row.id, readPayload(row.payload!) ?? "unreadable");
    else {
      const text = texts.get(row.call_id);
      out.set(
        row.id,
        text === undefined ? undefined : text === null ? "unreadable" : (rebuilt(row, text) ?? "unreadable"),
      );
    }
  }
  return out;
}

const encoder = new TextEncoder();

function rebuilt(row: DeliveryRow, text: string): Delivery | undefined {
  try {
    const call = parseCall(encoder.encode(text));
    const indices = json<number[]>(row.indices);
    return {
      v: 3,
      deliveryId: row.id,
      destination: row.destination,
      routes: json(row.routes),
      callId: row.call_id,
      indices,
      ...bodyAround(call, indices),
      receivedAt: row.received_at,
      ...(row.run > 0 && { run: row.run }),
    };
  } catch {
    return undefined;
  }
}

/** A delivery message kept as JSON text, or undefined when it cannot be read. */
function readPayload(payload: string): Delivery | undefined {
  try {
    return readDelivery(JSON.parse(payload));
  } catch {
    return undefined;
  }
}

// Dead letters: deliveries with status dead, in the record shape the dead-letter API has always had.

export async function listDeadLetters(
  db: D1Database,
  options: { destination?: string | undefined; cursor?: Cursor | undefined; limit: number },
): Promise<DeadLetterPage> {
  await ensureLedger(db);
  const params: unknown[] = [];
  const where = ["status = 'dead'"];
  if (options.destination !== undefined) {
    params.push(options.destination);
    where.push(`destination = ?${params.length}`);
  }
  if (options.cursor !== undefined) {
    params.push(options.cursor.at, options.cursor.id);
    where.push(`(dead_at < ?${params.length - 1} OR (dead_at = ?${params.length - 1} AND id > ?${params.length}))`);
  }
  params.push(options.limit + 1);
  const rows = (
    await db
      .prepare(
        `SELECT id, destination, dead_reason, dead_at, attempts, last_status FROM deliveries WHERE ${where.join(" AND ")}
         ORDER BY dead_at DESC, id LIMIT ?${params.length}`,
      )
      .bind(...params)
      .all<{
        id: string;
        destination: string;
        dead_reason: string;
        dead_at: number;
        attempts: number;
        last_status: number | null;
      }>()
  ).results;
  const items = rows.slice(0, options.limit).map((row) => ({
    deliveryId: row.id,
    destination: row.destination,
    reason: row.dead_reason,
    deadAt: iso(row.dead_at)!,
    attempts: row.attempts,
    ...(row.last_status !== null && { lastStatus: row.last_status }),
  }));
  const last = rows.length > options.limit ? rows[options.limit - 1] : undefined;
  return {
    items,
    ...(last !== undefined && { cursor: encodeCursor({ at: last.dead_at, id: last.id }) }),
    truncated: false,
  };
}

/**
 * A dead letter as a record (the shape the dead-letter API answers with), or why the stored one cannot be
 * read, or null when there is no dead letter with that delivery id.
 */
export async function getDeadLetter(
  db: D1Database,
  id: string,
): Promise<{ record: DeadLetter } | { unreadable: string } | null> {
  await ensureLedger(db);
  const row = await db
    .prepare(`SELECT ${DELIVERY_FIELDS}, payload, replayable FROM deliveries WHERE id = ?1 AND status = 'dead'`)
    .bind(id)
    .first<DeliveryRow>();
  if (row === null) return null;
  const message = (await messagesOf(db, [row])).get(row.id);
  if (message === "unreadable") return { unreadable: "its stored message is not one it can read" };
  const deadAt = iso(row.dead_at) ?? iso(row.updated_at)!;
  return {
    record: {
      kind: "dead-letter",
      deliveryId: row.id,
      destination: row.destination,
      reason: (row.dead_reason ?? "unreadable_message") as DeadLetterReason,
      detail: row.dead_detail ?? "",
      ...(row.last_status !== null && { lastStatus: row.last_status }),
      ...(row.last_error !== null && { lastError: row.last_error }),
      attempts: row.attempts,
      firstAttemptAt: iso(row.received_at)!,
      lastAttemptAt: iso(row.last_attempt_at) ?? deadAt,
      deadAt,
      source: row.dead_source === "queue" ? "queue" : "relay",
      ...(message !== undefined ? { message } : { raw: row.payload ?? "" }),
    },
  };
}

/**
 * The replayable dead letters to take on next (oldest first), of one destination when given. One whose message
 * cannot be rebuilt (its stored text unreadable or gone) is marked not replayable on the way, so that the next
 * call never meets it again: a bulk replay always makes progress. It stays a dead letter, to read and delete.
 */
export async function nextDeadLetters(
  db: D1Database,
  destination: string | undefined,
  limit: number,
): Promise<{ messages: Delivery[]; unreadable: string[]; more: boolean }> {
  await ensureLedger(db);
  const rows = (
    await db
      .prepare(
        `SELECT ${DELIVERY_FIELDS}, payload, replayable FROM deliveries WHERE status = 'dead' AND replayable = 1
         ${destination === undefined ? "" : "AND destination = ?2"} ORDER BY dead_at, id LIMIT ?1`,
      )
      .bind(limit + 1, ...(destination === undefined ? [] : [destination]))
      .all<DeliveryRow>()
  ).results;
  const taken = rows.slice(0, limit);
  const found = await messagesOf(db, taken);
  const messages: Delivery[] = [];
  const unreadable: string[] = [];
  for (const row of taken) {
    const message = found.get(row.id);
    if (typeof message === "object") messages.push(message);
    else unreadable.push(row.id);
  }
  if (unreadable.length > 0) {
    await db.batch(
      unreadable.map((id) =>
        db.prepare("UPDATE deliveries SET replayable = 0 WHERE id = ?1 AND status = 'dead'").bind(id),
      ),
    );
  }
  return { messages, unreadable, more: rows.length > limit };
}

/** Latency percentiles are taken over at most this many of a destination's latest attempts in the window. */
export const LATENCY_SAMPLE = 10_000;

/** Per destination, deliveries by current status, attempt latency and last success and failure; calls per Action. */
export async function stats(db: D1Database, since: number): Promise<Stats> {
  await ensureLedger(db);
  const [byStatus, attempts, actions] = await db.batch([
    db
      .prepare(
        "SELECT destination, status, COUNT(*) AS n FROM deliveries WHERE received_at >= ?1 GROUP BY destination, status",
      )
      .bind(since),
    db
      .prepare(
        `SELECT destination, COUNT(duration_ms) AS timed,
           MAX(CASE WHEN outcome = 'delivered' THEN at END) AS delivered_at,
           MAX(CASE WHEN outcome != 'delivered' THEN at END) AS failed_at
         FROM attempts WHERE at >= ?1 GROUP BY destination`,
      )
      .bind(since),
    db
      .prepare(
        "SELECT action, COUNT(DISTINCT call_id) AS n FROM notifications WHERE received_at >= ?1 GROUP BY action ORDER BY n DESC",
      )
      .bind(since),
  ]);
  const destinations: Record<string, DestinationStats> = {};
  const of = (name: string) => (destinations[name] ??= noDestinationStats());
  for (const row of byStatus!.results as { destination: string; status: DeliveryStatus; n: number }[]) {
    of(row.destination)[row.status] = row.n;
  }
  const timed = attempts!.results as {
    destination: string;
    timed: number;
    delivered_at: number | null;
    failed_at: number | null;
  }[];
  for (const row of timed) {
    of(row.destination).lastDeliveredAt = iso(row.delivered_at);
    of(row.destination).lastFailedAt = iso(row.failed_at);
  }
  // p50 and p95: the nearest-rank duration among the destination's latest attempts, one query each.
  const percentiles = timed.filter((row) => row.timed > 0);
  if (percentiles.length > 0) {
    const sampled = `SELECT duration_ms FROM (SELECT duration_ms FROM attempts
      WHERE destination = ?1 AND at >= ?2 AND duration_ms IS NOT NULL ORDER BY at DESC LIMIT ${LATENCY_SAMPLE})
      ORDER BY duration_ms LIMIT 1 OFFSET ?3`;
    const rank = (n: number, p: number) => Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1));
    const results = await db.batch(
      percentiles.flatMap((row) => {
        const n = Math.min(row.timed, LATENCY_SAMPLE);
        return [0.5, 0.95].map((p) => db.prepare(sampled).bind(row.destination, since, rank(n, p)));
      }),
    );
    percentiles.forEach((row, i) => {
      const value = (k: number) => (results[2 * i + k]!.results[0] as { duration_ms: number } | undefined)?.duration_ms;
      of(row.destination).p50Ms = value(0) ?? null;
      of(row.destination).p95Ms = value(1) ?? null;
    });
  }
  return {
    since: iso(since)!,
    destinations,
    actions: Object.fromEntries((actions!.results as { action: string; n: number }[]).map((r) => [r.action, r.n])),
  };
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
      .prepare("SELECT id, received_at FROM calls WHERE id IN (SELECT value FROM json_each(?1))")
      .bind(JSON.stringify(unique))
      .all<{ id: string; received_at: number }>()
  ).results;
  return new Map(rows.map((row) => [row.id, row.received_at]));
}

/** Whether the ledger holds a call with this Id (the door's dedupe for sender retries). */
export async function hasCall(db: D1Database, id: string): Promise<boolean> {
  await ensureLedger(db);
  return (await db.prepare("SELECT 1 AS found FROM calls WHERE id = ?1").bind(id).first()) !== null;
}

/**
 * A call's text as the sender wrote it, or null when the ledger does not hold all of it (yet, or any more) or
 * cannot read it (logged).
 */
export async function getCallText(db: D1Database, id: string): Promise<string | null> {
  await ensureLedger(db);
  const rows = (
    await db
      .prepare("SELECT part, parts, chunk FROM call_text WHERE call_id = ?1 ORDER BY part")
      .bind(id)
      .all<{ part: number; parts: number; chunk: unknown }>()
  ).results;
  if (rows.length === 0 || rows.length !== rows[0]!.parts) return null;
  return joinedOrNull(id, rows);
}

/**
 * A call's text from its call_text rows, in order (each part deflated on its own), or null when its stored
 * bytes do not inflate: logged, so that an unreadable text is seen rather than shown as missing.
 */
function joinedOrNull(callId: string, rows: readonly { chunk: unknown }[]): string | null {
  try {
    return rows.map((row) => unpackText(row.chunk)).join("");
  } catch (error) {
    log("error", "call_text_unreadable", { callId, error: describe(error) });
    return null;
  }
}
