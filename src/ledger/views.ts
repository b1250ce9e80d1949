import * as z from "zod";
import { HELD_REASONS, type HeldReason } from "../queues/ledger.ts";

/**
 * What the ledger's answers look like (src/ledger/calls.ts, deliveries.ts, dead-letters.ts, stats.ts): the admin
 * API's schemas (its OpenAPI document, src/admin/api.ts) and the types inferred from them, which the console shares.
 * Free of Workers types, so that tests and scripts on Node can import them.
 */

export const DELIVERY_STATUSES = ["pending", "retrying", "held", "delivered", "superseded", "dead"] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];
/** A call's status: the worst of its deliveries, or no_deliveries. */
export const CALL_STATUSES = [...DELIVERY_STATUSES, "no_deliveries"] as const;
export type CallStatus = (typeof CALL_STATUSES)[number];
const HELD = Object.keys(HELD_REASONS) as [HeldReason, ...HeldReason[]];
/** Call statuses from best to worst: what "the worst of its deliveries" means. */
export const CALL_STATUS_RANK: readonly CallStatus[] = [
  "no_deliveries",
  "delivered",
  "superseded",
  "pending",
  "held",
  "retrying",
  "dead",
];

/** A call's status from its deliveries' statuses. */
export function worstStatus(statuses: readonly DeliveryStatus[]): CallStatus {
  return statuses.reduce<CallStatus>(
    (worst, status) => (CALL_STATUS_RANK.indexOf(status) > CALL_STATUS_RANK.indexOf(worst) ? status : worst),
    "no_deliveries",
  );
}

/** A time in an answer: ISO-8601 in UTC, as `Date.prototype.toISOString` writes it. */
export const isoTime = () => z.iso.datetime();

export const attemptViewSchema = z
  .strictObject({
    attempt: z.int(),
    at: isoTime(),
    status: z.int().optional(),
    error: z.string().optional().describe("No answer; on a dead letter's last attempt, its reason."),
    durationMs: z.number().optional(),
    outcome: z.enum(["delivered", "retry", "dead_letter"]),
    replay: z.literal(true).optional(),
    rules: z
      .union([z.int(), z.string()])
      .optional()
      .describe("For a body a transform shaped: that rules version (or hash)."),
    answer: z
      .strictObject({ headers: z.array(z.tuple([z.string(), z.string()])), body: z.string() })
      .optional()
      .describe("A failed attempt's answer: the receiver's headers and the first 2 KB of its body, secrets masked."),
  })
  .meta({ id: "Attempt" });
export type AttemptView = z.infer<typeof attemptViewSchema>;

export const deliveryViewSchema = z
  .strictObject({
    deliveryId: z.string(),
    callId: z.string(),
    destination: z.string(),
    status: z.enum(DELIVERY_STATUSES),
    routes: z.array(z.string()),
    notifications: z.array(z.int()).describe("Its notifications' positions in the call."),
    receivedAt: isoTime(),
    updatedAt: isoTime(),
    attemptCount: z.int().describe("In its current run."),
    lastStatus: z.int().optional(),
    lastError: z.string().optional(),
    deliveredAt: isoTime().optional(),
    dead: z
      .strictObject({ reason: z.string(), detail: z.string(), at: isoTime(), source: z.string() })
      .optional()
      .describe("A dead letter's [reason](operations.md#dead-letter-reasons), sentence and time."),
    held: z
      .strictObject({ reason: z.enum(HELD), since: isoTime(), waitsFor: z.string().optional() })
      .optional()
      .describe("Why its gate holds it ([flow control](flow-control.md))."),
    supersededBy: z
      .string()
      .optional()
      .describe("Not sent: a newer notification about the same thing went in this delivery."),
    attempts: z.array(attemptViewSchema).optional(),
  })
  .meta({ id: "Delivery" });
export type DeliveryView = z.infer<typeof deliveryViewSchema>;

export const callTraceSchema = z
  .strictObject({
    id: z.string(),
    receivedAt: isoTime(),
    senderAttempts: z.array(z.unknown()).describe("The `Attempt` of each copy the door answered 2xx (at most 11)."),
    duplicates: z.int().optional(),
    notifications: z.array(
      z.strictObject({
        index: z.int(),
        action: z.string(),
        warehouse: z.string().nullable(),
        key: z.string().nullable().describe("The [business key](ledger.md#the-business-key)."),
        routes: z.array(z.string()),
        destinations: z.array(z.string()),
      }),
    ),
    deliveries: z.array(deliveryViewSchema),
  })
  .meta({ id: "CallTrace" });
export type CallTrace = z.infer<typeof callTraceSchema>;

/** A page of a list: newest first; `cursor` asks for the next page and is absent on the last. */
export interface Page<T> {
  items: T[];
  cursor?: string;
}

/** The schema of a page of `item`s, named `id`. */
export const pageSchema = <T extends z.ZodType>(item: T, id: string) =>
  z.strictObject({ items: z.array(item), cursor: z.string().optional() }).meta({ id });

export const callSummarySchema = z
  .strictObject({
    id: z.string(),
    receivedAt: isoTime(),
    actions: z.array(z.string()),
    keys: z.array(z.string()),
    deliveries: z.int(),
    status: z.enum(CALL_STATUSES).describe("The worst of its deliveries'."),
  })
  .meta({ id: "CallSummary" });
export type CallSummary = z.infer<typeof callSummarySchema>;

export const callPageSchema = pageSchema(callSummarySchema, "CallPage");
export const deliveryPageSchema = pageSchema(deliveryViewSchema, "DeliveryPage");

export const deadLetterSummarySchema = z
  .strictObject({
    deliveryId: z.string(),
    destination: z.string(),
    reason: z.string(),
    deadAt: isoTime(),
    attempts: z.int(),
    lastStatus: z.int().optional(),
  })
  .meta({ id: "DeadLetterSummary" });
export type DeadLetterSummary = z.infer<typeof deadLetterSummarySchema>;

export const deadLetterPageSchema = z
  .strictObject({
    items: z.array(deadLetterSummarySchema),
    cursor: z.string().optional(),
    truncated: z.literal(false).describe("Always false, kept for clients of relay 0.1."),
  })
  .meta({ id: "DeadLetterPage" });
export type DeadLetterPage = z.infer<typeof deadLetterPageSchema>;

export const destinationStatsSchema = z
  .strictObject({
    delivered: z.int(),
    superseded: z.int(),
    retrying: z.int(),
    held: z.int(),
    dead: z.int(),
    pending: z.int(),
    p50Ms: z.number().nullable().describe("Percentiles of attempt durations (nearest rank)."),
    p95Ms: z.number().nullable(),
    lastDeliveredAt: isoTime().nullable(),
    lastFailedAt: isoTime().nullable(),
  })
  .meta({ id: "DestinationStats" });
export type DestinationStats = z.infer<typeof destinationStatsSchema>;

/** A destination's figures when the ledger has none for it in the window. */
export const noDestinationStats = (): DestinationStats => ({
  delivered: 0,
  superseded: 0,
  retrying: 0,
  held: 0,
  dead: 0,
  pending: 0,
  p50Ms: null,
  p95Ms: null,
  lastDeliveredAt: null,
  lastFailedAt: null,
});

export const statsSchema = z
  .strictObject({
    since: isoTime(),
    destinations: z.record(z.string(), destinationStatsSchema),
    actions: z.record(z.string(), z.int()).describe("Calls holding a notification of each Action."),
    ledger: z
      .strictObject({ waiting: z.int(), waitingSince: isoTime().optional() })
      .describe("Ledger records waiting in R2 for D1."),
  })
  .meta({ id: "Stats" });
export type Stats = z.infer<typeof statsSchema>;
