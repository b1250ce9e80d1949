import type { CallRecord } from "../queues/call.ts";
import type { DeadLetter } from "../queues/dead-letter.ts";
import { firstEnqueued } from "../queues/delivery.ts";
import type { AttemptRecord, HeldRecord, LedgerRecord } from "../queues/ledger.ts";
import { lastSeqOf, OUTCOME_CODES, partOf, SEQ_EPOCH, STATUS_CODES, seqOf } from "./keys.ts";
import { numbersOf } from "./names.ts";
import { ensureLedger } from "./schema.ts";
import { packText, putTexts } from "./texts.ts";

/**
 * Writing the ledger (docs/ledger.md, "How it is written"): every statement is idempotent (the same record written
 * twice leaves the same rows), and a delivery's row only moves forward: an older run or attempt never overwrites a
 * newer one, whatever order the writes arrive in. The rows of one kind go in one statement, as one JSON array bound
 * to one parameter and read back with `json_each` (D1 binds at most 100 parameters a statement), so a batch of a
 * thousand records is a handful of statements in one transaction. The batch's call texts go to R2 first, in one
 * object (src/ledger/texts.ts).
 */

/** A write that takes longer than this is treated as failed and retried later: it must not hold up a batch. */
export const LEDGER_TIMEOUT_MS = 5000;

/** Sender attempts kept per call besides the one it was accepted with; further duplicates are only counted. */
export const SENDER_ATTEMPTS_KEPT = 10;

/**
 * The most JSON bound to one statement: D1 takes strings up to 2,000,000 bytes, and a delivery row can hold a
 * dead letter's message of up to 128 KB.
 */
const MAX_JSON_BYTES = 1_000_000;

const { delivered, superseded, pending, held, dead } = STATUS_CODES;
const callSeq = (column: string) => `(SELECT seq FROM ledger_calls WHERE id = ${column})`;

/** The statement of one kind of row, over `value` (one row's JSON array) of `json_each(?1)`. */
const KINDS = {
  /** Calls, accepted or only named so far (by an attempt, a hold, a dead letter or a duplicate that came first). */
  call: `INSERT OR IGNORE INTO ledger_calls (seq, id, received_at, attempt, notifications, plan, text_object, text_at,
      text_bytes, claims)
    SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5,
      (SELECT id FROM ledger_text_objects WHERE key = value->>6), value->>7, value->>8, value->>9
    FROM json_each(?1)`,
  /**
   * A call whose seq another call of the same millisecond took: one after the last taken of that millisecond (or
   * after every call, should the millisecond be full), with its time kept beside it. `key`, its place in this
   * write, keeps two such calls of one write apart.
   */
  callMoved: `INSERT INTO ledger_calls (seq, id, received_at, attempt, notifications, plan, text_object, text_at,
      text_bytes, claims)
    SELECT CASE WHEN (SELECT MAX(seq) FROM ledger_calls WHERE seq BETWEEN value->>0 AND value->>10) + 1 + key <= value->>10
        THEN (SELECT MAX(seq) FROM ledger_calls WHERE seq BETWEEN value->>0 AND value->>10) + 1 + key
        ELSE (SELECT MAX(seq) FROM ledger_calls) + 1 + key END,
      value->>1, value->>11, value->>3, value->>4, value->>5,
      (SELECT id FROM ledger_text_objects WHERE key = value->>6), value->>7, value->>8, value->>9
    FROM json_each(?1) WHERE NOT EXISTS (SELECT 1 FROM ledger_calls WHERE id = value->>1)`,
  /** The record of an accepted call fills in the row that its attempts or duplicates made first. */
  callFilled: `UPDATE ledger_calls SET
      received_at = CASE WHEN (ledger_calls.seq >> 9) + ${SEQ_EPOCH} = j.value->>11 THEN NULL ELSE j.value->>11 END,
      attempt = j.value->>3, notifications = j.value->>4,
      plan = j.value->>5, text_object = (SELECT id FROM ledger_text_objects WHERE key = j.value->>6),
      text_at = j.value->>7, text_bytes = j.value->>8, claims = j.value->>9
    FROM json_each(?1) j WHERE ledger_calls.id = j.value->>1 AND ledger_calls.attempt IS NULL`,
  /** Another acceptance of a call already on record: one more sender attempt. */
  senderAttempt: `INSERT OR IGNORE INTO ledger_sender_attempts (call, at, attempt, outcome)
    SELECT c.seq, j.value->>1, j.value->>2, 'accepted' FROM json_each(?1) j JOIN ledger_calls c ON c.id = j.value->>0
    WHERE NOT (c.attempt = j.value->>2 AND COALESCE(c.received_at, (c.seq >> 9) + ${SEQ_EPOCH}) = j.value->>1)`,
  key: `INSERT OR IGNORE INTO ledger_keys (key, call) SELECT value->>1, ${callSeq("value->>0")} FROM json_each(?1)`,
  action: `INSERT OR IGNORE INTO ledger_actions (action, call) SELECT value->>1, ${callSeq("value->>0")} FROM json_each(?1)`,
  /** A planned delivery not attempted in this write is pending until an attempt says otherwise. */
  pending: `INSERT INTO ledger_deliveries (call, destination, part, status, at)
    SELECT ${callSeq("value->>0")}, value->>1, value->>2, ${pending}, value->>3 FROM json_each(?1) WHERE true
    ON CONFLICT DO NOTHING`,
  attempt: `INSERT OR IGNORE INTO ledger_attempts (call, destination, part, run, attempt, at, status, error,
      duration_ms, outcome, rules, answer)
    SELECT ${callSeq("value->>0")}, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>7,
      value->>8, value->>9, value->>10, value->>11 FROM json_each(?1)`,
  /** A delivery moves forward only: a later run, or a later attempt of the same run (or a dead letter of it). */
  delivery: `INSERT INTO ledger_deliveries (call, destination, part, status, at, run, attempts, last_status, last_error,
      dead_at, dead, stuck, payload, delivery_id)
    SELECT ${callSeq("value->>0")}, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>7,
      value->>8, value->>9, value->>10, value->>11, value->>12, value->>13 FROM json_each(?1) WHERE true
    ON CONFLICT (call, destination, part) DO UPDATE SET
      status = excluded.status, at = excluded.at, run = excluded.run,
      attempts = MAX(excluded.attempts, CASE WHEN excluded.run = ledger_deliveries.run THEN ledger_deliveries.attempts ELSE 0 END),
      last_status = COALESCE(excluded.last_status, CASE WHEN excluded.status = ${dead} THEN ledger_deliveries.last_status END),
      last_error = COALESCE(excluded.last_error, CASE WHEN excluded.status = ${dead} THEN ledger_deliveries.last_error END),
      dead_at = excluded.dead_at, dead = excluded.dead, stuck = excluded.stuck,
      payload = COALESCE(excluded.payload, ledger_deliveries.payload),
      delivery_id = COALESCE(excluded.delivery_id, ledger_deliveries.delivery_id), held_reason = NULL, ref = NULL
    WHERE excluded.run > ledger_deliveries.run OR (excluded.run = ledger_deliveries.run AND
      (excluded.attempts >= ledger_deliveries.attempts OR excluded.status = ${dead}))`,
  /**
   * Held back by the gate after `attempts` attempts of a run: moves the delivery on only from the same point or an
   * earlier one, so a held record that arrives after the attempt that released it changes nothing.
   */
  held: `INSERT INTO ledger_deliveries (call, destination, part, status, at, run, attempts, held_reason, ref)
    SELECT ${callSeq("value->>0")}, value->>1, value->>2, ${held}, value->>3, value->>4, value->>5, value->>6,
      value->>7
    FROM json_each(?1) WHERE true
    ON CONFLICT (call, destination, part) DO UPDATE SET status = ${held}, at = excluded.at, run = excluded.run,
      attempts = excluded.attempts, held_reason = excluded.held_reason, ref = excluded.ref
    WHERE excluded.run > ledger_deliveries.run OR (excluded.run = ledger_deliveries.run
      AND excluded.attempts >= ledger_deliveries.attempts
      AND ledger_deliveries.status NOT IN (${delivered}, ${superseded}, ${dead}))`,
  /** Superseded by a newer notification about the same thing (coalescing): never sent, `ref` names the newer. */
  superseded: `INSERT INTO ledger_deliveries (call, destination, part, status, at, run, attempts, ref)
    SELECT ${callSeq("value->>0")}, value->>1, value->>2, ${superseded}, value->>3, value->>4, value->>5, value->>6
    FROM json_each(?1) WHERE true
    ON CONFLICT (call, destination, part) DO UPDATE SET status = ${superseded}, at = excluded.at, run = excluded.run,
      attempts = excluded.attempts, held_reason = NULL, ref = excluded.ref
    WHERE excluded.run > ledger_deliveries.run OR (excluded.run = ledger_deliveries.run
      AND excluded.attempts >= ledger_deliveries.attempts AND ledger_deliveries.status NOT IN (${delivered}, ${dead}))`,
} as const;

type Kind = keyof typeof KINDS;
type Rows = Record<Kind, unknown[][]>;

/** What a batch writes besides rows of JSON: texts kept in D1, and duplicates (a statement per call). */
interface Extras {
  parts: { id: string; part: number; parts: number; chunk: string | Uint8Array }[];
  duplicates: Map<string, { at: number; attempt: string }[]>;
}

/** The statements that write `records` (their texts already placed), in an order that needs no other. */
function statements(
  db: D1Database,
  records: readonly LedgerRecord[],
  numbers: Map<string, number>,
  texts: Map<string, { key: string; at: number; bytes: number }>,
): D1PreparedStatement[] {
  const rows: Rows = {
    call: [],
    callMoved: [],
    callFilled: [],
    senderAttempt: [],
    key: [],
    action: [],
    pending: [],
    attempt: [],
    delivery: [],
    held: [],
    superseded: [],
  };
  const extras: Extras = { parts: [], duplicates: new Map() };
  const number = (name: string) => numbers.get(name)!;
  // The calls every record names, each once: with its record when this write has it.
  const calls = new Map<string, unknown[]>();
  const name = (id: string, at: number) => {
    if (!calls.has(id)) calls.set(id, callRow(id, at));
  };
  // A delivery attempted in this same write needs no pending row first.
  const written = new Set<string>();
  for (const record of records) {
    if (record.kind === "attempt" || record.kind === "superseded") written.add(record.deliveryId);
    if (record.kind === "dead") written.add(record.record.deliveryId);
  }
  for (const record of records) {
    if (record.kind === "call") {
      name(record.id, record.at);
      if (record.outcome === "duplicate") {
        const list = extras.duplicates.get(record.id) ?? [];
        list.push({ at: record.at, attempt: record.attempt });
        extras.duplicates.set(record.id, list);
      } else addCall(rows, extras, record, number, texts.get(record.id), written, calls);
    } else if (record.kind === "attempt") {
      name(record.callId, record.receivedAt);
      addAttempt(rows, record, number);
    } else if (record.kind === "held") {
      name(record.callId, record.receivedAt);
      addHeld(rows, record, number);
    } else if (record.kind === "superseded") {
      name(record.callId, record.receivedAt);
      const part = partOf(record.deliveryId, record.callId, record.destination);
      rows.superseded.push([
        record.callId,
        number(record.destination),
        part ?? 0,
        record.at,
        record.run,
        record.attempts,
        record.by,
      ]);
    } else addDead(rows, record.record, number, name);
  }
  rows.call = [...calls.values()];
  rows.callMoved = rows.call;
  const out: D1PreparedStatement[] = [];
  for (const kind of Object.keys(KINDS) as Kind[]) out.push(...jsonRows(db, KINDS[kind], rows[kind]));
  for (const [id, list] of extras.duplicates) {
    const entries = JSON.stringify(list.slice(0, SENDER_ATTEMPTS_KEPT).map((d) => [d.at, d.attempt]));
    out.push(
      db
        .prepare(
          `INSERT OR IGNORE INTO ledger_sender_attempts (call, at, attempt, outcome)
           SELECT ${callSeq("?1")}, value->>0, value->>1, 'duplicate' FROM json_each(?2)
           LIMIT MAX(0, ${SENDER_ATTEMPTS_KEPT} - (SELECT COUNT(*) FROM ledger_sender_attempts WHERE call = ${callSeq("?1")}))`,
        )
        .bind(id, entries),
      db
        .prepare("UPDATE ledger_calls SET duplicates = COALESCE(duplicates, 0) + ?2 WHERE id = ?1")
        .bind(id, list.length),
    );
  }
  for (const p of extras.parts) {
    out.push(
      db
        .prepare(
          `INSERT OR IGNORE INTO ledger_text_parts (call, part, parts, chunk) VALUES (${callSeq("?1")}, ?2, ?3, ?4)`,
        )
        .bind(p.id, p.part, p.parts, p.chunk),
    );
  }
  return out;
}

/**
 * A call's row for `ledger_calls`: [seq, id, received_at, attempt, notifications, plan, text object, text at, text
 * bytes, claims, last seq of its millisecond, received_at when moved]; only the first two for a call named by
 * another record.
 */
function callRow(id: string, at: number, fields: unknown[] = [null, null, null, null, null, null, null]): unknown[] {
  const seq = seqOf(id, at);
  return [seq, id, null, ...fields, lastSeqOf(seq), at];
}

function addCall(
  rows: Rows,
  extras: Extras,
  record: CallRecord,
  number: (name: string) => number,
  text: { key: string; at: number; bytes: number } | undefined,
  written: ReadonlySet<string>,
  calls: Map<string, unknown[]>,
): void {
  rows.senderAttempt.push([record.id, record.at, record.attempt]);
  const parts = record.text !== undefined && typeof record.text === "object" ? record.text : undefined;
  if (parts !== undefined && (parts.of > 1 || text === undefined)) {
    extras.parts.push({ id: record.id, part: parts.part, parts: parts.of, chunk: packText(parts.chunk) });
  }
  if (typeof record.text === "string" && text === undefined) {
    extras.parts.push({ id: record.id, part: 0, parts: 1, chunk: packText(record.text) });
  }
  const notifications = record.notifications ?? [];
  for (const key of new Set(notifications.flatMap((n) => (n.key === null ? [] : [n.key])))) {
    rows.key.push([record.id, key]);
  }
  for (const action of new Set(notifications.map((n) => n.action))) rows.action.push([record.id, number(action)]);
  const plan = (record.deliveries ?? []).map((d) => {
    const part = partOf(d.id, record.id, d.destination);
    return { d, part };
  });
  for (const { d, part } of plan) {
    if (written.has(d.id) || part === null) continue;
    rows.pending.push([record.id, number(d.destination), part, record.at]);
  }
  // Only the part with the summary is the record of acceptance; the other parts add rows.
  if (record.summary === undefined) return;
  const claims =
    record.claims !== undefined || record.textClaim !== undefined
      ? JSON.stringify({ ...(record.textClaim !== undefined && { text: record.textClaim }), n: record.claims ?? [] })
      : null;
  calls.set(
    record.id,
    callRow(record.id, record.at, [
      record.attempt,
      JSON.stringify(
        notifications.map((n) => [
          number(n.action),
          n.warehouse,
          n.key,
          n.routes.map(number),
          n.destinations.map(number),
        ]),
      ),
      JSON.stringify(
        plan.flatMap(({ d, part }) =>
          part === null ? [] : [[number(d.destination), part, d.routes.map(number), d.indices]],
        ),
      ),
      text?.key ?? null,
      text?.at ?? null,
      text?.bytes ?? null,
      claims,
    ]),
  );
  rows.callFilled.push(calls.get(record.id)!);
}

function addAttempt(rows: Rows, a: AttemptRecord, number: (name: string) => number): void {
  const part = partOf(a.deliveryId, a.callId, a.destination);
  const destination = number(a.destination);
  const outcome = OUTCOME_CODES[a.outcome];
  rows.attempt.push([
    a.callId,
    destination,
    part ?? 0,
    a.run,
    a.attempt,
    a.at,
    a.status ?? null,
    a.error ?? null,
    a.durationMs ?? null,
    outcome,
    a.rules ?? null,
    a.answer === undefined ? null : JSON.stringify(a.answer),
  ]);
  const isDead = a.outcome === "dead_letter";
  rows.delivery.push([
    a.callId,
    destination,
    part ?? 0,
    outcome,
    a.at,
    a.run,
    a.attempt,
    a.status ?? null,
    a.error ?? null,
    isDead ? a.at : null,
    isDead ? JSON.stringify({ reason: a.dead?.reason ?? "", detail: a.dead?.detail ?? "", source: "relay" }) : null,
    null,
    a.payload ?? null,
    part === null ? a.deliveryId : null,
  ]);
}

/** Statements run in KINDS' order: an attempt in the same batch is written first, the hold's WHERE then decides. */
function addHeld(rows: Rows, h: HeldRecord, number: (name: string) => number): void {
  const part = partOf(h.deliveryId, h.callId, h.destination);
  rows.held.push([h.callId, number(h.destination), part ?? 0, h.at, h.run, h.attempts, h.reason, h.waitsFor ?? null]);
}

function addDead(
  rows: Rows,
  record: DeadLetter,
  number: (name: string) => number,
  name: (id: string, at: number) => void,
): void {
  const message = record.message;
  const deadAt = Date.parse(record.deadAt);
  // An unreadable message's dead letter is a call of its own, named by its delivery id.
  const callId = message?.callId ?? record.deliveryId;
  name(callId, message?.receivedAt ?? Date.parse(record.firstAttemptAt));
  const part = partOf(record.deliveryId, callId, record.destination);
  rows.delivery.push([
    callId,
    number(record.destination),
    part ?? 0,
    dead,
    deadAt,
    message?.run ?? 0,
    record.attempts,
    record.lastStatus ?? null,
    record.lastError ?? null,
    deadAt,
    JSON.stringify({ reason: record.reason, detail: record.detail, source: record.source }),
    message === undefined ? 1 : null,
    message === undefined ? rawPayload(record.raw) : JSON.stringify(firstEnqueued(message)),
    part === null ? record.deliveryId : null,
  ]);
}

function rawPayload(raw: unknown): string {
  return typeof raw === "string" ? raw : (JSON.stringify(raw) ?? "");
}

/**
 * `INSERT … SELECT value->>0, … FROM json_each(?1)` over the rows as one JSON array (in order), cut where the JSON
 * would pass MAX_JSON_BYTES.
 */
function jsonRows(db: D1Database, sql: string, rows: readonly unknown[][]): D1PreparedStatement[] {
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

/** Every name `records` use: destinations, and the Actions and routes of the calls they record. */
function namesIn(records: readonly LedgerRecord[]): Set<string> {
  const names = new Set<string>();
  for (const r of records) {
    if (r.kind === "attempt" || r.kind === "held" || r.kind === "superseded") names.add(r.destination);
    else if (r.kind === "dead") names.add(r.record.destination);
    else {
      for (const n of r.notifications ?? []) {
        names.add(n.action);
        for (const name of [...n.routes, ...n.destinations]) names.add(name);
      }
      for (const d of r.deliveries ?? []) for (const name of [d.destination, ...d.routes]) names.add(name);
    }
  }
  return names;
}

/**
 * Writes `records` in one transaction (one `db.batch`), creating the tables first when needed, with the texts of
 * the calls they accept in one R2 object before it. Throws when the write fails or takes longer than
 * LEDGER_TIMEOUT_MS.
 */
export async function writeLedger(
  db: D1Database,
  payloads: R2Bucket | undefined,
  records: readonly LedgerRecord[],
  now = Date.now(),
): Promise<void> {
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
        await db.batch(await ledgerStatements(db, payloads, records, now));
      })(),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The statements that write `records`, once the texts of the calls they accept are in R2 (or, should R2 fail, kept
 * for D1) and every name they use has its number. The tables must exist (ensureLedger).
 */
export async function ledgerStatements(
  db: D1Database,
  payloads: R2Bucket | undefined,
  records: readonly LedgerRecord[],
  now: number,
): Promise<D1PreparedStatement[]> {
  const withText = records.filter(
    (r): r is CallRecord & { text: string } =>
      r.kind === "call" && r.outcome === "accepted" && r.summary !== undefined && wholeText(r) !== undefined,
  );
  const [numbers, stored] = await Promise.all([
    numbersOf(db, namesIn(records)),
    putTexts(
      payloads,
      withText.map((r) => wholeText(r)!),
      now,
    ),
  ]);
  const texts = new Map<string, { key: string; at: number; bytes: number }>();
  if (stored !== undefined) {
    for (const [i, r] of withText.entries()) texts.set(r.id, { key: stored.key, ...stored.places[i]! });
  }
  const batch = statements(db, records, numbers, texts);
  if (stored !== undefined) {
    batch.unshift(
      db.prepare("INSERT OR IGNORE INTO ledger_text_objects (key, day) VALUES (?1, ?2)").bind(stored.key, stored.day),
    );
  }
  return batch;
}

/** A call record's text when it has all of it (relay 0.1 sent long texts in parts). */
function wholeText(record: CallRecord): string | undefined {
  if (typeof record.text === "string") return record.text;
  if (record.text !== undefined && record.text.of === 1) return record.text.chunk;
  return undefined;
}

/** The call and delivery ids of `records`, for a log line that names what was not written. */
export function idsOf(records: readonly LedgerRecord[]): { calls: string[]; deliveries: string[] } {
  return {
    calls: records.flatMap((r) => (r.kind === "call" ? [r.id] : [])),
    deliveries: records.flatMap((r) =>
      r.kind === "attempt" || r.kind === "held" || r.kind === "superseded"
        ? [r.deliveryId]
        : r.kind === "dead"
          ? [r.record.deliveryId]
          : [],
    ),
  };
}
