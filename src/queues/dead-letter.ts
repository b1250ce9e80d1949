import * as z from "zod";
import { type Delivery, firstEnqueued, readDelivery } from "./delivery.ts";
import { cut, RECORD_TEXT_LIMITS } from "./limits.ts";

/** Why a delivery stopped for good; each reason's text is what docs/operations.md says of it. */
export const DEAD_LETTER_REASONS = {
  permanent_failure:
    "The receiver answered 3xx, 410 or another 4xx, which is not retried (redirects are not followed).",
  attempts_exhausted:
    "Every attempt the destination allows (`maxAttempts`) failed; `lastStatus` / `lastError` say how.",
  destination_missing: "The rules no longer have this destination; add it back and replay.",
  destination_disabled: "The destination is disabled in the rules; enable it and replay.",
  secret_missing: "A Worker secret the destination names is not set; `wrangler secret put` it and replay.",
  secret_invalid:
    "A secret's value cannot be used: a header secret with a line break, control or non-ASCII character, a `whsec_` key that is empty or not base64, or a `url` secret that is not an https URL. The secret is named, never shown.",
  secret_not_allowed:
    "The rules name one of the relay's own secrets (`EXTEND_WEBHOOK_SECRET`, `…_PREVIOUS`, `ADMIN_TOKEN`); it is never sent anywhere. Fix the rules and replay.",
  host_not_allowed:
    "The destination's host may not get this delivery: it is not in `DESTINATION_HOSTS`, or a secret the destination names is not bound to it in `SECRET_HOSTS`. The detail names the secret, never its value. Fix the rules (or the vars) and replay.",
  claim_unreadable:
    "A notification kept in R2 (PAYLOADS) could not be read back: R2 unavailable, the object gone, or not what was kept (its length or SHA-256 differs). The detail says which. Replay it once the object is back, or ask the sender to send the call again.",
  transform_failed:
    "The destination's `transform` (a JSONata expression) failed on this notification or returned nothing; the detail has JSONata's message. Fix the expression in the rules and replay: a replay transforms again with the rules in force.",
  held_limit:
    "The destination's gate already held `MAX_HELD_PER_DESTINATION` deliveries (a long pause, or a receiver far slower than its traffic), so this one was not held. Resume or fix the destination, then replay.",
  unreadable_message: "A queue message that is not a delivery message this relay can read (kept in `raw`).",
  queue_retries_exhausted:
    "Cloudflare Queues gave up on the message (`max_retries`) before the relay settled it; `attempts: 0` means no attempt was counted. Replay it.",
} as const;

export type DeadLetterReason = keyof typeof DEAD_LETTER_REASONS;
const REASONS = Object.keys(DEAD_LETTER_REASONS) as [DeadLetterReason, ...DeadLetterReason[]];

/** A delivery as a dead-letter record keeps it: one this relay (or an older one) enqueued. */
const keptDelivery = z.unknown().transform((value, ctx) => {
  const delivery = readDelivery(value);
  if (delivery === undefined) {
    ctx.addIssue({ code: "custom", message: "is not a delivery message this relay can read" });
    return z.NEVER;
  }
  return delivery;
});

/**
 * A delivery that will not be retried any more: what it was, where it was going, and why it stopped. Sent on
 * DEAD_LETTERS by the delivery consumer and the gates (or put there by Queues itself), stored by the dead-letter
 * consumer.
 */
export const deadLetterSchema = z.object({
  kind: z.literal("dead-letter"),
  deliveryId: z.string(),
  destination: z.string(),
  reason: z.enum(REASONS),
  /** A sentence a person can act on. */
  detail: z.string(),
  lastStatus: z.number().optional(),
  lastError: z.string().optional(),
  attempts: z.number(),
  /** When the message entered the delivery queue; its first attempt follows within the batch timeout. */
  firstAttemptAt: z.string(),
  lastAttemptAt: z.string(),
  deadAt: z.string(),
  /** `relay`: the consumer gave up on it; `queue`: Queues' own retries ran out (max_retries). */
  source: z.enum(["relay", "queue"]),
  /** The delivery as first enqueued in its run; replay sends it again. Absent only when unreadable. */
  message: z.optional(keptDelivery),
  /** What was on the queue when it could not be read as a delivery message (JSON text, cut to RAW_LIMIT). */
  raw: z.unknown().optional(),
});

export type DeadLetter = z.infer<typeof deadLetterSchema>;

/** The one way a dead-letter record is made: text fields bounded, optional fields only when present. */
export function deadLetter(fields: {
  deliveryId: string;
  destination: string;
  reason: DeadLetterReason;
  detail: string;
  attempts: number;
  firstAttemptAt: Date;
  at: Date;
  source: DeadLetter["source"];
  lastStatus?: number | undefined;
  lastError?: string | undefined;
  message?: Delivery | undefined;
  raw?: unknown;
}): DeadLetter {
  const at = fields.at.toISOString();
  return {
    kind: "dead-letter",
    deliveryId: cut(fields.deliveryId, RECORD_TEXT_LIMITS.id),
    destination: cut(fields.destination, RECORD_TEXT_LIMITS.id),
    reason: fields.reason,
    detail: cut(fields.detail, RECORD_TEXT_LIMITS.detail),
    ...(fields.lastStatus !== undefined && { lastStatus: fields.lastStatus }),
    ...(fields.lastError !== undefined && { lastError: cut(fields.lastError, RECORD_TEXT_LIMITS.lastError) }),
    attempts: fields.attempts,
    firstAttemptAt: fields.firstAttemptAt.toISOString(),
    lastAttemptAt: at,
    deadAt: at,
    source: fields.source,
    ...(fields.message !== undefined && { message: firstEnqueued(fields.message) }),
    ...(fields.message === undefined && { raw: rawText(fields.raw) }),
  };
}

function rawText(raw: unknown): string {
  let text: string;
  try {
    text = typeof raw === "string" ? raw : (JSON.stringify(raw) ?? String(raw));
  } catch {
    text = String(raw);
  }
  return cut(text, RECORD_TEXT_LIMITS.raw);
}

/** A dead-letter record, or the first problem that makes `value` not one. */
export function readDeadLetter(value: unknown): { record: DeadLetter } | { problem: string } {
  const parsed = deadLetterSchema.safeParse(value);
  if (parsed.success) return { record: parsed.data };
  const issue = parsed.error.issues[0]!;
  return { problem: `${issue.path.join(".") || "the record"}: ${issue.message}` };
}
