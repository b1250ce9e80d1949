import type { AttemptRecord, CallRecord, DeadLetter } from "../queues.ts";
import { ensureLedger } from "./schema.ts";

/**
 * Writing the ledger: every statement is idempotent (the same record written twice leaves the same rows), and
 * a delivery's row only moves forward: an older run or attempt never overwrites a newer one, whatever order
 * the writes arrive in.
 */

/** What a consumer batch writes: call records, attempts, and dead letters from the dead-letter consumer. */
export type LedgerRecord = CallRecord | AttemptRecord | { kind: "dead"; record: DeadLetter };

/** A write that takes longer than this is treated as failed and retried later: it must not hold up a batch. */
export const LEDGER_TIMEOUT_MS = 5000;

const DELIVERY_COLUMNS = `id, call_id, destination, status, routes, indices, received_at, updated_at, run, attempts,
  last_status, last_error, last_attempt_at, delivered_at, dead_reason, dead_detail, dead_at, dead_source, payload, replayable`;
const DELIVERY_VALUES = "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20";

/** A delivery moves forward only: a later run, or a later attempt of the same run (or a dead letter of it). */
const FORWARD = `excluded.run > deliveries.run OR (excluded.run = deliveries.run AND
  (excluded.attempts >= deliveries.attempts OR excluded.status = 'dead'))`;

const UPSERT_DELIVERY = `INSERT INTO deliveries (${DELIVERY_COLUMNS}) VALUES (${DELIVERY_VALUES})
  ON CONFLICT (id) DO UPDATE SET
    status = excluded.status, updated_at = excluded.updated_at, run = excluded.run,
    attempts = MAX(excluded.attempts, CASE WHEN excluded.run = deliveries.run THEN deliveries.attempts ELSE 0 END),
    last_status = COALESCE(excluded.last_status, CASE WHEN excluded.status = 'dead' THEN deliveries.last_status END),
    last_error = COALESCE(excluded.last_error, CASE WHEN excluded.status = 'dead' THEN deliveries.last_error END),
    last_attempt_at = COALESCE(excluded.last_attempt_at, deliveries.last_attempt_at),
    delivered_at = COALESCE(excluded.delivered_at, deliveries.delivered_at),
    dead_reason = excluded.dead_reason, dead_detail = excluded.dead_detail,
    dead_at = excluded.dead_at, dead_source = excluded.dead_source,
    payload = COALESCE(excluded.payload, deliveries.payload),
    replayable = MAX(excluded.replayable, deliveries.replayable)
  WHERE ${FORWARD}`;

const PENDING_DELIVERY = `INSERT INTO deliveries (${DELIVERY_COLUMNS}) VALUES (${DELIVERY_VALUES})
  ON CONFLICT (id) DO NOTHING`;

/** The statements that write `records`, in order. */
export function ledgerStatements(db: D1Database, records: readonly LedgerRecord[]): D1PreparedStatement[] {
  const out: D1PreparedStatement[] = [];
  for (const record of records) {
    if (record.kind === "call") out.push(...callStatements(db, record));
    else if (record.kind === "attempt") out.push(...attemptStatements(db, record));
    else out.push(deadStatement(db, record.record));
  }
  return out;
}

function callStatements(db: D1Database, record: CallRecord): D1PreparedStatement[] {
  const out = [
    db
      .prepare("INSERT OR IGNORE INTO sender_attempts (call_id, at, attempt, outcome) VALUES (?1, ?2, ?3, ?4)")
      .bind(record.id, record.at, record.attempt, record.outcome),
  ];
  if (record.summary !== undefined) {
    const { summary } = record;
    out.push(
      db
        .prepare(
          `INSERT OR IGNORE INTO calls (id, received_at, notification_count, delivery_count, actions, keys)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6)`,
        )
        .bind(
          record.id,
          record.at,
          summary.notifications,
          summary.deliveries,
          JSON.stringify(summary.actions),
          JSON.stringify(summary.keys),
        ),
    );
  }
  for (const n of record.notifications ?? []) {
    out.push(
      db
        .prepare(
          `INSERT OR IGNORE INTO notifications (call_id, idx, action, warehouse, key, routes, destinations, received_at)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)`,
        )
        .bind(
          record.id,
          n.i,
          n.action,
          n.warehouse,
          n.key,
          JSON.stringify(n.routes),
          JSON.stringify(n.destinations),
          record.at,
        ),
    );
  }
  for (const d of record.deliveries ?? []) {
    out.push(
      db
        .prepare(PENDING_DELIVERY)
        .bind(
          d.id,
          record.id,
          d.destination,
          "pending",
          JSON.stringify(d.routes),
          JSON.stringify(d.indices),
          record.at,
          record.at,
          0,
          0,
          null,
          null,
          null,
          null,
          null,
          null,
          null,
          null,
          null,
          0,
        ),
    );
  }
  return out;
}

const STATUS_AFTER = { delivered: "delivered", retry: "retrying", dead_letter: "dead" } as const;

function attemptStatements(db: D1Database, a: AttemptRecord): D1PreparedStatement[] {
  const status = STATUS_AFTER[a.outcome];
  const dead = a.outcome === "dead_letter";
  return [
    db
      .prepare(
        `INSERT OR IGNORE INTO attempts (delivery_id, run, attempt, destination, at, status, error, duration_ms, outcome)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)`,
      )
      .bind(
        a.deliveryId,
        a.run,
        a.attempt,
        a.destination,
        a.at,
        a.status ?? null,
        a.error ?? null,
        a.durationMs ?? null,
        a.outcome,
      ),
    db
      .prepare(UPSERT_DELIVERY)
      .bind(
        a.deliveryId,
        a.callId,
        a.destination,
        status,
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
        a.payload,
        1,
      ),
  ];
}

function deadStatement(db: D1Database, record: DeadLetter): D1PreparedStatement {
  const message = record.message;
  const deadAt = Date.parse(record.deadAt);
  const { attempts: _, ...firstEnqueued } = message ?? {};
  return db
    .prepare(UPSERT_DELIVERY)
    .bind(
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
      message === undefined ? rawPayload(record.raw) : JSON.stringify(firstEnqueued),
      message === undefined ? 0 : 1,
    );
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
