import * as z from "zod";
import { callRecordSchema } from "./call.ts";
import { deadLetterSchema } from "./dead-letter.ts";

/** Which delivery a record is about: what the ledger keys its rows by, in every kind of record about one. */
const deliveryFields = {
  deliveryId: z.string(),
  destination: z.string(),
  callId: z.string(),
  routes: z.array(z.string()),
  indices: z.array(z.int()),
  receivedAt: z.number(),
  run: z.int(),
};

/** One delivery attempt, for the ledger. */
export const attemptRecordSchema = z.object({
  kind: z.literal("attempt"),
  ...deliveryFields,
  attempt: z.int(),
  at: z.number(),
  status: z.int().optional(),
  error: z.string().optional(),
  durationMs: z.int().optional(),
  outcome: z.enum(["delivered", "retry", "dead_letter"]),
  /**
   * The delivery message as first enqueued (JSON text), only for a message an older relay enqueued: the ledger
   * has no text of its call to rebuild it from.
   */
  payload: z.string().optional(),
  /** For a transformed body: the rules (their hash, src/rules/save.ts rulesHash) whose expression shaped it. */
  rules: z.string().optional(),
  /** A failed attempt's answer: the receiver's headers and the start of its body (src/delivery/senders.ts). */
  answer: z.object({ headers: z.array(z.tuple([z.string(), z.string()])), body: z.string() }).optional(),
  dead: z.object({ reason: z.string(), detail: z.string() }).optional(),
});

export type AttemptRecord = z.infer<typeof attemptRecordSchema>;

/** Why a delivery is held back (docs/flow-control.md); each reason's text is what the docs say of it. */
export const HELD_REASONS = {
  paused: "The destination was paused by hand; it goes out, in order, when the destination is resumed.",
  circuit_open:
    "The circuit breaker paused the destination after failed attempts in a row; it goes out, in order, once a probe succeeds.",
  rate_limit: "The destination's `rateLimit` has no room within the next second; it goes out at its turn.",
  concurrency: "The destination already has `concurrency` requests in flight; it goes out when one finishes.",
  in_line: "Deliveries that arrived earlier are held for this destination; it goes out after them, in order.",
  ordered:
    'The destination has `order: "key"` and an earlier delivery with one of its business keys is not settled yet (`waitsFor` names it); it goes out once that one is delivered or a dead letter.',
  coalescing:
    "The notification is coalesced (`coalesce`): it waits for its window to close, and a newer one about the same thing replaces it meanwhile.",
} as const;

export type HeldReason = keyof typeof HELD_REASONS;
const HELD = Object.keys(HELD_REASONS) as [HeldReason, ...HeldReason[]];

/** A delivery held back by its destination's gate (src/gate/): waiting is not an attempt. */
export const heldRecordSchema = z.object({
  kind: z.literal("held"),
  ...deliveryFields,
  /** Attempts made so far in this run; the next one, when released, is attempts + 1. */
  attempts: z.int(),
  at: z.number(),
  reason: z.enum(HELD),
  /** With reason `ordered`: the delivery it waits for. */
  waitsFor: z.string().optional(),
});

export type HeldRecord = z.infer<typeof heldRecordSchema>;

/**
 * A coalesced delivery that is not sent, because a newer notification about the same thing was accepted within its
 * window (docs/rules.md, "Shaping deliveries"): `by` carries the newer state.
 */
export const supersededRecordSchema = heldRecordSchema
  .omit({ kind: true, reason: true, waitsFor: true })
  .extend({ kind: z.literal("superseded"), by: z.string() });

export type SupersededRecord = z.infer<typeof supersededRecordSchema>;

/** A dead letter on its way into the ledger (from the dead-letter consumer, or waiting after a failed write). */
export const deadRecordSchema = z.object({ kind: z.literal("dead"), record: deadLetterSchema });

/** Everything the ledger writes. */
export const ledgerRecordSchema = z.discriminatedUnion("kind", [
  callRecordSchema,
  attemptRecordSchema,
  heldRecordSchema,
  supersededRecordSchema,
  deadRecordSchema,
]);

export type LedgerRecord = z.infer<typeof ledgerRecordSchema>;

/**
 * What one delivery batch (or a gate's pump) means for the ledger: its calls' records and every attempt and hold
 * it made, sent on LEDGER_RECORDS in one message and written by the ledger's consumer in large batches.
 */
export const ledgerMessageSchema = z.object({
  kind: z.literal("ledger"),
  records: z.array(ledgerRecordSchema),
});

export type LedgerMessage = z.infer<typeof ledgerMessageSchema>;
