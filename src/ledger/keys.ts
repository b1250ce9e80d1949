import type { DeliveryStatus } from "./views.ts";

/**
 * How the ledger keys and codes its rows (docs/ledger.md, "How it is stored"), free of Workers types. Every table
 * refers to a call by its `seq`: its acceptance time in milliseconds since SEQ_EPOCH, times 512, plus 9 bits of a
 * hash of its Id. Rows therefore sort by time with no index of their own for it, and a time range is a range of
 * keys. Two calls of the same millisecond and hash take the next free number of that millisecond, so the time a
 * seq says is exact for every call; the Id's own unique index says which seq a call has.
 */

export const SEQ_EPOCH = Date.parse("2026-01-01T00:00:00Z");
const SLOTS = 512;

/** The first seq of millisecond `ms`: every call accepted at `ms` or later has a seq at least this. */
export const seqAt = (ms: number): number => Math.floor(ms - SEQ_EPOCH) * SLOTS;

/** When the call with this seq was accepted (ms since 1970). */
export const timeOf = (seq: number): number => Math.floor(seq / SLOTS) + SEQ_EPOCH;

/** The seq a call accepted at `ms` takes unless another call took it first. */
export function seqOf(id: string, ms: number): number {
  let hash = 2166136261;
  for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 16777619);
  return seqAt(ms) + ((hash >>> 0) % SLOTS);
}

/** The last seq of the millisecond that `seq` is in. */
export const lastSeqOf = (seq: number): number => seqAt(timeOf(seq)) + SLOTS - 1;

/**
 * A delivery's status as stored: its place in "the worst of a call's deliveries" (views.ts), so that a call's
 * status is the MAX of its deliveries'. Delivered is 0, which SQLite stores in no bytes at all.
 */
export const STATUS_CODES = {
  delivered: 0,
  superseded: 1,
  pending: 2,
  held: 3,
  retrying: 4,
  dead: 5,
} as const satisfies Record<DeliveryStatus, number>;
const STATUSES = Object.fromEntries(Object.entries(STATUS_CODES).map(([status, code]) => [code, status])) as Record<
  number,
  DeliveryStatus
>;
export const statusOfCode = (code: number): DeliveryStatus => STATUSES[code] ?? "pending";

/** An attempt's outcome as stored: the code of the status it leaves its delivery in. */
export const OUTCOME_CODES = {
  delivered: STATUS_CODES.delivered,
  retry: STATUS_CODES.retrying,
  dead_letter: STATUS_CODES.dead,
} as const;
export type AttemptOutcome = keyof typeof OUTCOME_CODES;
const OUTCOMES = Object.fromEntries(Object.entries(OUTCOME_CODES).map(([o, code]) => [code, o])) as Record<
  number,
  AttemptOutcome
>;
export const outcomeOfCode = (code: number): AttemptOutcome => OUTCOMES[code] ?? "retry";

/**
 * Which of its destination's deliveries of a call a delivery is (docs/delivery.md, "Delivery ids"): 0 for
 * `<Id>.<destination>`, k for part `.p<k>`, -1 - i for notification `.n<i>` of a single-mode destination; null for
 * an id of another shape (an unreadable message's), which the row then keeps whole.
 */
export function partOf(deliveryId: string, callId: string, destination: string): number | null {
  const stem = `${callId}.${destination}`;
  if (deliveryId === stem) return 0;
  if (!deliveryId.startsWith(`${stem}.`)) return null;
  const match = /^([pn])(0|[1-9]\d{0,8})$/.exec(deliveryId.slice(stem.length + 1));
  if (match === null) return null;
  return match[1] === "p" ? Number(match[2]) : -1 - Number(match[2]);
}

/** The delivery id of part `part` of a call's deliveries to a destination (the inverse of partOf). */
export function deliveryIdOf(callId: string, destination: string, part: number): string {
  if (part === 0) return `${callId}.${destination}`;
  return part > 0 ? `${callId}.${destination}.p${part}` : `${callId}.${destination}.n${-1 - part}`;
}

/**
 * The calls a delivery id can belong to: every prefix of it before a dot, and the whole id (an unreadable
 * message's dead letter is a call of its own). Destination names hold no dots, so one of these is its call.
 */
export function callIdsIn(deliveryId: string): string[] {
  const ids = [deliveryId];
  for (let at = deliveryId.indexOf("."); at > 0; at = deliveryId.indexOf(".", at + 1))
    ids.push(deliveryId.slice(0, at));
  return ids;
}
