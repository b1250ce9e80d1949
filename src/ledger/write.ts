import type { CallRecord } from "../queues/call.ts";
import type { DeadLetter } from "../queues/dead-letter.ts";
import { firstEnqueued } from "../queues/delivery.ts";
import type { AttemptRecord, HeldRecord, LedgerRecord } from "../queues/ledger.ts";
import { ensureLedger } from "./schema.ts";
import { packText } from "./text.ts";

/**
 * Writing the ledger: every statement is idempotent (the same record written twice leaves the same rows), and
 * a delivery's row only moves forward: an older run or attempt never overwrites a newer one, whatever order
 * the writes arrive in. The rows of one kind go in one statement, as one JSON array bound to one parameter and
 * read back with `json_each` (D1 binds at most 100 parameters a statement), so a batch of a thousand records is a
 * handful of statements in one transaction. Only call texts, which are BLOBs, are bound row by row.
 */

/** A write that takes longer than this is treated as failed and retried later: it must not hold up a batch. */
export const LEDGER_TIMEOUT_MS = 5000;

/** D1 binds at most 100 parameters a statement. */
const MAX_PARAMETERS = 100;

/**
 * The most JSON bound to one statement: D1 takes strings up to 2,000,000 bytes, and a delivery row can hold a
 * legacy message of up to 128 KB.
 */
const MAX_JSON_BYTES = 1_000_000;

const DELIVERY_COLUMNS = `id, call_id, destination, status, routes, indices, received_at, updated_at, run, attempts,
  last_status, last_error, last_attempt_at, delivered_at, dead_reason, dead_detail, dead_at, dead_source, payload, replayable`;

/** A delivery moves forward only: a later run, or a later attempt of the same run (or a dead letter of it). */
const UPSERT_DELIVERY_TAIL = `ON CONFLICT (id) DO UPDATE SET
    status = excluded.status, updated_at = excluded.updated_at, run = excluded.run,
    attempts = MAX(excluded.attempts, CASE WHEN excluded.run = deliveries.run THEN deliveries.attempts ELSE 0 END),
    last_status = COALESCE(excluded.last_status, CASE WHEN excluded.status = 'dead' THEN deliveries.last_status END),
    last_error = COALESCE(excluded.last_error, CASE WHEN excluded.status = 'dead' THEN deliveries.last_error END),
    last_attempt_at = COALESCE(excluded.last_attempt_at, deliveries.last_attempt_at),
    delivered_at = COALESCE(excluded.delivered_at, deliveries.delivered_at),
    dead_reason = excluded.dead_reason, dead_detail = excluded.dead_detail,
    dead_at = excluded.dead_at, dead_source = excluded.dead_source,
    payload = COALESCE(excluded.payload, deliveries.payload),
    replayable = MAX(excluded.replayable, deliveries.replayable), held_reason = NULL
  WHERE excluded.run > deliveries.run OR (excluded.run = deliveries.run AND
    (excluded.attempts >= deliveries.attempts OR excluded.status = 'dead'))`;

/** One kind of row: the statement around its VALUES, and how many parameters a row has. */
interface RowKind {
  head: string;
  /** One row's VALUES tuple, with `?` for each parameter (numbered, or read from JSON, when the statement is built). */
  tuple: string;
  tail: string;
  /** Bound row by row (BLOB values, which JSON cannot carry), not as one JSON array. */
  blobs?: true;
}

const KINDS = {
  senderAttempt: {
    head: "INSERT OR IGNORE INTO sender_attempts (call_id, at, attempt, outcome) VALUES",
    tuple: "(?, ?, ?, ?)",
    tail: "",
  },
  call: {
    head: "INSERT OR IGNORE INTO calls (id, received_at, notification_count, delivery_count, actions, keys) VALUES",
    tuple: "(?, ?, ?, ?, ?, ?)",
    tail: "",
  },
  callText: {
    head: "INSERT OR IGNORE INTO call_text (call_id, part, parts, chunk) VALUES",
    tuple: "(?, ?, ?, ?)",
    tail: "",
    blobs: true,
  },
  notification: {
    head: "INSERT OR IGNORE INTO notifications (call_id, idx, action, warehouse, key, routes, destinations, received_at) VALUES",
    tuple: "(?, ?, ?, ?, ?, ?, ?, ?)",
    tail: "",
  },
  pending: {
    head: "INSERT INTO deliveries (id, call_id, destination, status, routes, indices, received_at, updated_at) VALUES",
    tuple: "(?, ?, ?, 'pending', ?, ?, ?, ?)",
    tail: "ON CONFLICT (id) DO NOTHING",
  },
  attempt: {
    head: "INSERT OR IGNORE INTO attempts (delivery_id, run, attempt, destination, at, status, error, duration_ms, outcome) VALUES",
    tuple: "(?, ?, ?, ?, ?, ?, ?, ?, ?)",
    tail: "",
  },
  delivery: {
    head: `INSERT INTO deliveries (${DELIVERY_COLUMNS}) VALUES`,
    tuple: `(${Array(20).fill("?").join(", ")})`,
    tail: UPSERT_DELIVERY_TAIL,
  },
  /**
   * Held back by the gate after `attempts` attempts of a run: moves the delivery on only from the same point or
   * an earlier one, so a held record that arrives after the attempt that released it changes nothing.
   */
  held: {
    head: "INSERT INTO deliveries (id, call_id, destination, status, routes, indices, received_at, updated_at, run, attempts, held_reason) VALUES",
    tuple: "(?, ?, ?, 'held', ?, ?, ?, ?, ?, ?, ?)",
    tail: `ON CONFLICT (id) DO UPDATE SET status = 'held', updated_at = excluded.updated_at, run = excluded.run,
      attempts = excluded.attempts, held_reason = excluded.held_reason
      WHERE excluded.run > deliveries.run OR (excluded.run = deliveries.run AND excluded.attempts >= deliveries.attempts
        AND deliveries.status NOT IN ('delivered', 'dead'))`,
  },
} satisfies Record<string, RowKind>;

type Rows = { [K in keyof typeof KINDS]: unknown[][] };

const STATUS_AFTER = { delivered: "delivered", retry: "retrying", dead_letter: "dead" } as const;

/** The statements that write `records`: about one per kind of row, in an order that needs no other. */
export function ledgerStatements(db: D1Database, records: readonly LedgerRecord[]): D1PreparedStatement[] {
  const rows: Rows = {
    senderAttempt: [],
    call: [],
    callText: [],
    notification: [],
    pending: [],
    attempt: [],
    delivery: [],
    held: [],
  };
  // A delivery attempted in this same write needs no pending row first.
  const written = new Set(
    records.flatMap((r) => (r.kind === "attempt" ? [r.deliveryId] : r.kind === "dead" ? [r.record.deliveryId] : [])),
  );
  for (const record of records) {
    if (record.kind === "call") addCall(rows, record, written);
    else if (record.kind === "attempt") addAttempt(rows, record);
    else if (record.kind === "held") addHeld(rows, record);
    else addDead(rows, record.record);
  }
  return (Object.keys(KINDS) as (keyof typeof KINDS)[]).flatMap((kind) => statements(db, KINDS[kind], rows[kind]));
}

/** `rows` of one kind in as few statements as D1's limits allow. */
function statements(db: D1Database, kind: RowKind, rows: unknown[][]): D1PreparedStatement[] {
  if (rows.length === 0) return [];
  return kind.blobs ? boundRows(db, kind, rows) : jsonRows(db, kind, rows);
}

/**
 * `INSERT … SELECT value->>0, value->>1, … FROM json_each(?1)` over the rows as one JSON array (in order), cut
 * where the JSON would pass MAX_JSON_BYTES. `WHERE true` lets SQLite read an upsert's ON CONFLICT after a SELECT.
 */
function jsonRows(db: D1Database, kind: RowKind, rows: unknown[][]): D1PreparedStatement[] {
  let n = 0;
  const columns = kind.tuple.slice(1, -1).replace(/\?/g, () => `value->>${n++}`);
  const sql = `${kind.head.replace(/ VALUES$/, "")} SELECT ${columns} FROM json_each(?1) WHERE true ${kind.tail}`;
  const out: D1PreparedStatement[] = [];
  let parts: string[] = [];
  let bytes = 2;
  const flush = () => {
    if (parts.length > 0) out.push(db.prepare(sql).bind(`[${parts.join(",")}]`));
    parts = [];
    bytes = 2;
  };
  for (const row of rows) {
    const text = JSON.stringify(row);
    // UTF-16 length × 3 bounds the UTF-8 bytes without counting them.
    if (parts.length > 0 && bytes + 3 * text.length + 1 > MAX_JSON_BYTES) flush();
    parts.push(text);
    bytes += 3 * text.length + 1;
  }
  flush();
  return out;
}

/** Multi-row VALUES statements of at most MAX_PARAMETERS parameters each. */
function boundRows(db: D1Database, kind: RowKind, rows: unknown[][]): D1PreparedStatement[] {
  const per = Math.floor(MAX_PARAMETERS / rows[0]!.length);
  const out: D1PreparedStatement[] = [];
  for (let start = 0; start < rows.length; start += per) {
    const chunk = rows.slice(start, start + per);
    let n = 0;
    const values = chunk.map(() => kind.tuple.replace(/\?/g, () => `?${++n}`)).join(", ");
    out.push(db.prepare(`${kind.head} ${values} ${kind.tail}`).bind(...chunk.flat()));
  }
  return out;
}

function addCall(rows: Rows, record: CallRecord, written: ReadonlySet<string>): void {
  rows.senderAttempt.push([record.id, record.at, record.attempt, record.outcome]);
  const { summary } = record;
  if (summary !== undefined) {
    rows.call.push([
      record.id,
      record.at,
      summary.notifications,
      summary.deliveries,
      JSON.stringify(summary.actions),
      JSON.stringify(summary.keys),
    ]);
  }
  const text = typeof record.text === "string" ? { part: 0, of: 1, chunk: record.text } : record.text;
  if (text !== undefined) rows.callText.push([record.id, text.part, text.of, packText(text.chunk)]);
  for (const n of record.notifications ?? []) {
    rows.notification.push([
      record.id,
      n.i,
      n.action,
      n.warehouse,
      n.key,
      JSON.stringify(n.routes),
      JSON.stringify(n.destinations),
      record.at,
    ]);
  }
  for (const d of record.deliveries ?? []) {
    if (written.has(d.id)) continue;
    rows.pending.push([
      d.id,
      record.id,
      d.destination,
      JSON.stringify(d.routes),
      JSON.stringify(d.indices),
      record.at,
      record.at,
    ]);
  }
}

function addAttempt(rows: Rows, a: AttemptRecord): void {
  const dead = a.outcome === "dead_letter";
  rows.attempt.push([
    a.deliveryId,
    a.run,
    a.attempt,
    a.destination,
    a.at,
    a.status ?? null,
    a.error ?? null,
    a.durationMs ?? null,
    a.outcome,
  ]);
  rows.delivery.push([
    a.deliveryId,
    a.callId,
    a.destination,
    STATUS_AFTER[a.outcome],
    JSON.stringify(a.routes),
    JSON.stringify(a.indices),
    a.receivedAt,
    a.at,
    a.run,
    a.attempt,
    a.status ?? null,
    a.error ?? null,
    a.at,
    a.outcome === "delivered" ? a.at : null,
    dead ? (a.dead?.reason ?? null) : null,
    dead ? (a.dead?.detail ?? null) : null,
    dead ? a.at : null,
    dead ? "relay" : null,
    a.payload ?? null,
    1,
  ]);
}

/** Statements run in KINDS' order: an attempt in the same batch is written first, the hold's WHERE then decides. */
function addHeld(rows: Rows, h: HeldRecord): void {
  rows.held.push([
    h.deliveryId,
    h.callId,
    h.destination,
    JSON.stringify(h.routes),
    JSON.stringify(h.indices),
    h.receivedAt,
    h.at,
    h.run,
    h.attempts,
    h.reason,
  ]);
}

function addDead(rows: Rows, record: DeadLetter): void {
  const message = record.message;
  const deadAt = Date.parse(record.deadAt);

  rows.delivery.push([
    record.deliveryId,
    message?.callId ?? "",
    record.destination,
    "dead",
    JSON.stringify(message?.routes ?? []),
    JSON.stringify(message?.indices ?? []),
    message?.receivedAt ?? Date.parse(record.firstAttemptAt),
    deadAt,
    message?.run ?? 0,
    record.attempts,
    record.lastStatus ?? null,
    record.lastError ?? null,
    Date.parse(record.lastAttemptAt),
    null,
    record.reason,
    record.detail,
    deadAt,
    record.source,
    message === undefined ? rawPayload(record.raw) : JSON.stringify(firstEnqueued(message)),
    message === undefined ? 0 : 1,
  ]);
}

function rawPayload(raw: unknown): string {
  return typeof raw === "string" ? raw : (JSON.stringify(raw) ?? "");
}

/**
 * Writes `records` in one transaction (one `db.batch`), creating the tables first when needed. Throws when the
 * write fails or takes longer than LEDGER_TIMEOUT_MS.
 */
export async function writeLedger(db: D1Database, records: readonly LedgerRecord[]): Promise<void> {
  if (records.length === 0) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the ledger did not answer within ${LEDGER_TIMEOUT_MS} ms`)),
      LEDGER_TIMEOUT_MS,
    );
  });
  try {
    await Promise.race([
      (async () => {
        await ensureLedger(db);
        await db.batch(ledgerStatements(db, records));
      })(),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The call and delivery ids of `records`, for a log line that names what was not written. */
export function idsOf(records: readonly LedgerRecord[]): { calls: string[]; deliveries: string[] } {
  return {
    calls: records.flatMap((r) => (r.kind === "call" ? [r.id] : [])),
    deliveries: records.flatMap((r) =>
      r.kind === "attempt" || r.kind === "held" ? [r.deliveryId] : r.kind === "dead" ? [r.record.deliveryId] : [],
    ),
  };
}
