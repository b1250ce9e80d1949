import type { HeldReason } from "../queues/ledger.ts";
import { deliveryIdOf, outcomeOfCode, SEQ_EPOCH, statusOfCode } from "./keys.ts";
import { namesOf } from "./names.ts";
import { versionsOf } from "./rules-history.ts";
import type { AttemptView, DeliveryView } from "./views.ts";

/**
 * The rows the ledger's reads share (src/ledger/calls.ts, deliveries.ts, dead-letters.ts), their columns as SQL,
 * and what the API makes of them (src/ledger/views.ts). The tables are in src/ledger/migrations.ts.
 */

/** A call's time, as stored: its own when it was moved off its seq, else the time its seq says. */
export const RECEIVED_AT = `COALESCE(c.received_at, (c.seq >> 9) + ${SEQ_EPOCH})`;

/** A delivery with what its call says of it: `d` the delivery, `c` its call. */
export const DELIVERY_COLUMNS = `d.call, d.destination, d.part, d.status, d.at, d.run, d.attempts, d.last_status,
  d.last_error, d.held_reason, d.dead_at, d.dead, d.stuck, d.delivery_id, d.ref, c.id AS call_id,
  ${RECEIVED_AT} AS received_at, c.plan`;
export const DELIVERY_FROM = "ledger_deliveries d JOIN ledger_calls c ON c.seq = d.call";

export interface DeliveryRow {
  call: number;
  destination: number;
  part: number;
  status: number;
  at: number;
  run: number;
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  held_reason: string | null;
  dead_at: number | null;
  dead: string | null;
  stuck: number | null;
  delivery_id: string | null;
  /** The delivery it waits for (held, ordered) or was superseded by. */
  ref: string | null;
  call_id: string;
  received_at: number;
  plan: string | null;
  payload?: string | null;
}

export const ATTEMPT_COLUMNS =
  "call, destination, part, run, attempt, at, status, error, duration_ms, outcome, rules, answer";

export interface AttemptRow {
  call: number;
  destination: number;
  part: number;
  run: number;
  attempt: number;
  at: number;
  status: number | null;
  error: string | null;
  duration_ms: number | null;
  outcome: number;
  rules: string | null;
  /** A failed attempt's answer as JSON {headers, body}. */
  answer: string | null;
}

/** One planned delivery in a call's `plan`: [destination, part, [routes], [notification positions]]. */
export type PlanEntry = [number, number, number[], number[]];
/** One notification in a call's `notifications`: [action, warehouse, key, [routes], [destinations]]. */
export type NotificationEntry = [number, string | null, string | null, number[], number[]];

export const iso = (ms: number | null | undefined): string | null =>
  ms === null || ms === undefined ? null : new Date(ms).toISOString();

export function parsed<T>(text: string | null | undefined, fallback: T): T {
  if (text === null || text === undefined) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

/** A delivery's id as the relay gives it out. */
export async function deliveryIdsOf(db: D1Database, rows: readonly DeliveryRow[]): Promise<string[]> {
  const name = await namesOf(
    db,
    rows.map((r) => r.destination),
  );
  return rows.map((r) => r.delivery_id ?? deliveryIdOf(r.call_id, name(r.destination), r.part));
}

/** The key of a delivery row among its call's. */
const same = (row: { destination: number; part: number }) => (other: { destination: number; part: number }) =>
  other.destination === row.destination && other.part === row.part;

/** The attempts of `rows` (from one query, in order), by delivery. */
export function attemptsBy(rows: readonly AttemptRow[]): (delivery: DeliveryRow) => AttemptRow[] {
  return (delivery) => rows.filter((a) => a.call === delivery.call && same(delivery)(a));
}

/** Deliveries as the API and the console show them, with their attempts when given. */
export async function deliveryViews(
  db: D1Database,
  rows: readonly DeliveryRow[],
  attempts?: (delivery: DeliveryRow) => AttemptRow[],
): Promise<DeliveryView[]> {
  const ids = await deliveryIdsOf(db, rows);
  const plans = rows.map((row) =>
    parsed<PlanEntry[]>(row.plan, []).find((e) => e[0] === row.destination && e[1] === row.part),
  );
  const name = await namesOf(db, [...rows.map((r) => r.destination), ...plans.flatMap((p) => p?.[2] ?? [])]);
  const shaped = attempts === undefined ? [] : rows.flatMap((r) => attempts(r).flatMap((a) => a.rules ?? []));
  const versions = await versionsOf(db, shaped);
  return rows.map((row, i) => {
    const status = statusOfCode(row.status);
    const dead = parsed<{ reason?: string; detail?: string; source?: string }>(row.dead, {});
    const plan = plans[i];
    return {
      deliveryId: ids[i]!,
      callId: row.call_id,
      destination: name(row.destination),
      status,
      routes: (plan?.[2] ?? []).map(name),
      notifications: plan?.[3] ?? [],
      receivedAt: iso(row.received_at)!,
      updatedAt: iso(row.at)!,
      attemptCount: row.attempts,
      ...(row.last_status !== null && { lastStatus: row.last_status }),
      ...(row.last_error !== null && { lastError: row.last_error }),
      ...(status === "delivered" && { deliveredAt: iso(row.at)! }),
      ...(status === "dead" && {
        dead: {
          reason: dead.reason ?? "",
          detail: dead.detail ?? "",
          at: iso(row.dead_at ?? row.at)!,
          source: dead.source ?? "relay",
        },
      }),
      ...(status === "held" && {
        held: {
          reason: (row.held_reason ?? "in_line") as HeldReason,
          since: iso(row.at)!,
          ...(row.ref !== null && { waitsFor: row.ref }),
        },
      }),
      ...(status === "superseded" && row.ref !== null && { supersededBy: row.ref }),
      ...(attempts !== undefined && { attempts: attempts(row).map((a) => attemptView(a, versions)) }),
    };
  });
}

function attemptView(row: AttemptRow, versions: ReadonlyMap<string, number>): AttemptView {
  return {
    attempt: row.attempt,
    at: iso(row.at)!,
    ...(row.status !== null && { status: row.status }),
    ...(row.error !== null && { error: row.error }),
    ...(row.duration_ms !== null && { durationMs: row.duration_ms }),
    outcome: outcomeOfCode(row.outcome),
    ...(row.run > 0 && { replay: true as const }),
    ...(row.rules !== null && { rules: versions.get(row.rules) ?? row.rules }),
    ...(row.answer !== null && {
      answer: parsed<NonNullable<AttemptView["answer"]>>(row.answer, { headers: [], body: "" }),
    }),
  };
}
