import * as z from "zod";
import { notificationSchema } from "./extend/envelope.ts";

/**
 * What travels on the relay's queues: their names, the delivery message and the dead-letter record, each
 * described once here. Messages are sent as JSON text (contentType "text").
 */

/** The queues, by their exact names in wrangler.toml (test/queues.test.ts checks both agree). */
export const QUEUES = {
  deliveries: "extend-relay-deliveries",
  deadLetters: "extend-relay-dead-letters",
  /** Where dead letters go when writing them keeps failing: consumed too, never left unread. */
  deadLettersFailed: "extend-relay-dead-letters-failed",
  /** What the ledger is to record (calls and attempts), written in large batches by its own consumer. */
  ledger: "extend-relay-ledger",
  /** Alerts on their way to the tech contact and the alert webhooks (src/alerts/). */
  alerts: "extend-relay-alerts",
} as const;

/**
 * What the ledger needs to know of a call the door answered 2xx: sent on DELIVERIES in the same sendBatch as
 * the call's deliveries (riding on the last of them when it fits, else in messages of its own) and handed on
 * to the ledger by the delivery consumer. A large call's record is split over parts; the part with `summary`
 * is enqueued last, so a call is on record as accepted only once all of it is enqueued. A duplicate's record
 * only adds the sender's attempt.
 */
export const callRecordSchema = z.object({
  kind: z.literal("call"),
  v: z.literal(1),
  id: z.string(),
  /** When the door answered (ms since epoch). */
  at: z.number(),
  /** The sender's `Attempt`, as JSON text. */
  attempt: z.string(),
  outcome: z.enum(["accepted", "duplicate"]),
  summary: z
    .object({
      notifications: z.int(),
      deliveries: z.int(),
      actions: z.array(z.string()),
      keys: z.array(z.string()),
    })
    .optional(),
  notifications: z
    .array(
      z.object({
        i: z.int(),
        action: z.string(),
        warehouse: z.string().nullable(),
        key: z.string().nullable(),
        routes: z.array(z.string()),
        destinations: z.array(z.string()),
      }),
    )
    .optional(),
  deliveries: z
    .array(
      z.object({ id: z.string(), destination: z.string(), routes: z.array(z.string()), indices: z.array(z.int()) }),
    )
    .optional(),
  /**
   * A piece of the call's text as the sender wrote it (part k of n), kept once per call so that any of its
   * deliveries can be sent again; deliveries keep only which notifications they hold.
   */
  text: z.object({ part: z.int(), of: z.int(), chunk: z.string() }).optional(),
});

export type CallRecord = z.infer<typeof callRecordSchema>;

/**
 * One downstream request to one destination (docs/delivery.md): the request body as the text before and after
 * its `Attempt` value (the sender's own text, src/extend/envelope.ts), which notifications of the call it
 * holds, the routes that picked them and a delivery id that is stable across attempts, replays and sender
 * retries.
 */
export const deliveryMessageSchema = z.object({
  v: z.literal(2),
  deliveryId: z.string().min(1),
  destination: z.string().min(1),
  routes: z.array(z.string()),
  /** The sender's call Id. */
  callId: z.string(),
  /** The positions in the call of the notifications this request holds, in order. */
  indices: z.array(z.int()),
  head: z.string(),
  tail: z.string(),
  /** Part k of n when one destination's notifications had to be split over several messages. */
  part: z.tuple([z.int(), z.int()]).optional(),
  /** When the relay accepted the sender's call (ms since epoch). */
  receivedAt: z.number(),
  /** Attempts already made in this run (absent: none). The next attempt is number attempts + 1. */
  attempts: z.int().min(0).optional(),
  /** Replays so far (absent: none); a replay starts a new run with attempts afresh. */
  run: z.int().min(0).optional(),
  /** The call's record for the ledger, riding on one of its deliveries (the last enqueued) when it fits. */
  record: callRecordSchema.optional(),
});

export type DeliveryMessage = z.infer<typeof deliveryMessageSchema>;

/** What relay 0.1 enqueued (contentType json): read so that messages in flight during an upgrade still go out. */
const legacyMessageSchema = z.object({
  v: z.literal(1),
  deliveryId: z.string().min(1),
  destination: z.string().min(1),
  routes: z.array(z.string()),
  envelope: z.looseObject({ Id: z.string() }),
  notifications: z.array(notificationSchema),
  part: z.tuple([z.int(), z.int()]).optional(),
  receivedAt: z.number(),
});

const ATTEMPT_MARK = "\u0000attempt\u0000";

function fromLegacy(legacy: z.infer<typeof legacyMessageSchema>): DeliveryMessage {
  const { envelope, notifications, v: _, ...rest } = legacy;
  const text = JSON.stringify({ ...envelope, Attempt: ATTEMPT_MARK, Notifications: notifications });
  const [head, tail] = text.split(`${JSON.stringify(ATTEMPT_MARK)}`) as [string, string];
  return { v: 2, ...rest, callId: envelope.Id, indices: notifications.map((_n, i) => i), head, tail };
}

/** The request body of a delivery's attempt number `attempt`. */
export const bodyOf = (delivery: DeliveryMessage, attempt: number): string =>
  `${delivery.head}${attempt}${delivery.tail}`;

/** One delivery attempt, for the ledger. */
export const attemptRecordSchema = z.object({
  kind: z.literal("attempt"),
  deliveryId: z.string(),
  destination: z.string(),
  callId: z.string(),
  routes: z.array(z.string()),
  indices: z.array(z.int()),
  receivedAt: z.number(),
  run: z.int(),
  attempt: z.int(),
  at: z.number(),
  status: z.int().optional(),
  error: z.string().optional(),
  durationMs: z.int().optional(),
  outcome: z.enum(["delivered", "retry", "dead_letter"]),
  /**
   * The delivery message as first enqueued (JSON text), only for a message an older relay enqueued: the
   * ledger has no text of its call to rebuild it from.
   */
  payload: z.string().optional(),
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
} as const;

export type HeldReason = keyof typeof HELD_REASONS;
const HELD = Object.keys(HELD_REASONS) as [HeldReason, ...HeldReason[]];

/** A delivery held back by its destination's gate (src/gate/): waiting is not an attempt. */
export const heldRecordSchema = z.object({
  kind: z.literal("held"),
  deliveryId: z.string(),
  destination: z.string(),
  callId: z.string(),
  routes: z.array(z.string()),
  indices: z.array(z.int()),
  receivedAt: z.number(),
  run: z.int(),
  /** Attempts made so far in this run; the next one, when released, is attempts + 1. */
  attempts: z.int(),
  at: z.number(),
  reason: z.enum(HELD),
});

export type HeldRecord = z.infer<typeof heldRecordSchema>;

/**
 * What one delivery batch means for the ledger (its calls' records and every attempt it made), sent on the
 * ledger queue, whose consumer writes large batches of them in one `db.batch` (docs/ledger.md).
 */
export const ledgerMessageSchema = z.object({
  kind: z.literal("ledger"),
  // By `kind` at once: a plain union would first try (and fail) every kind listed before the record's own.
  records: z.array(z.discriminatedUnion("kind", [callRecordSchema, attemptRecordSchema, heldRecordSchema])),
});

export type LedgerMessage = z.infer<typeof ledgerMessageSchema>;

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
  unreadable_message: "A queue message that is not a delivery message this relay can read (kept in `raw`).",
  queue_retries_exhausted:
    "Cloudflare Queues gave up on the message (`max_retries`) before the relay settled it; `attempts: 0` means no attempt was counted. Replay it.",
} as const;

export type DeadLetterReason = keyof typeof DEAD_LETTER_REASONS;
const REASONS = Object.keys(DEAD_LETTER_REASONS) as [DeadLetterReason, ...DeadLetterReason[]];

/**
 * A delivery that will not be retried any more: what it was, where it was going, and why it stopped. Sent on
 * DEAD_LETTERS by the delivery consumer (or put there by Queues itself), stored by the dead-letter consumer.
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
  /** The delivery message as it was enqueued; replay sends it again. Absent only when unreadable. */
  message: z.union([deliveryMessageSchema, legacyMessageSchema.transform(fromLegacy)]).optional(),
  /** What was on the queue when it could not be read as a delivery message (JSON text, cut to RAW_LIMIT). */
  raw: z.unknown().optional(),
});

export type DeadLetter = z.infer<typeof deadLetterSchema>;

/**
 * Bounds of a record's own text (UTF-8 bytes), so that a record around the largest message the planner
 * accepts still fits a queue message: 126,000 + about 1,700 bytes of record fields + Queues' metadata stay
 * under 128,000 (src/delivery/planner.ts, MESSAGE_BUDGET; the record holds the message as JSON, as sent).
 */
export const RECORD_TEXT_LIMITS = { detail: 600, lastError: 400, id: 300, raw: 100_000 } as const;

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
  message?: DeliveryMessage | undefined;
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
    ...(fields.message !== undefined && { message: fields.message }),
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

const encoder = new TextEncoder();

/** `text` cut to at most `maxBytes` of UTF-8 (never inside a character), marked with … when cut. */
export function cut(text: string, maxBytes: number): string {
  if (text.length * 3 <= maxBytes || encoder.encode(text).byteLength <= maxBytes) return text;
  const bytes = encoder.encode(text).subarray(0, maxBytes - 3);
  return `${new TextDecoder().decode(bytes).replace(/\uFFFD$/, "")}…`;
}

/** A queue message body as sent: JSON text. */
export function encodeMessage(body: DeliveryMessage | DeadLetter | CallRecord | LedgerMessage | AlertMessage): string {
  return JSON.stringify(body);
}

/**
 * A queue message body as read: JSON text parsed; an object (an older relay's contentType "json") as is;
 * text that is not JSON stays text (and is then unreadable).
 */
export function decodeMessage(body: unknown): unknown {
  if (typeof body !== "string") return body;
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}

/** A delivery message (or an older relay's, converted), or undefined when `value` is not one. */
export function readDeliveryMessage(value: unknown): DeliveryMessage | undefined {
  const current = deliveryMessageSchema.safeParse(value);
  if (current.success) return current.data;
  const legacy = legacyMessageSchema.safeParse(value);
  return legacy.success ? fromLegacy(legacy.data) : undefined;
}

/** A dead-letter record, or the first problem that makes `value` not one. */
export function readDeadLetter(value: unknown): { record: DeadLetter } | { problem: string } {
  const parsed = deadLetterSchema.safeParse(value);
  if (parsed.success) return { record: parsed.data };
  const issue = parsed.error.issues[0]!;
  return { problem: `${issue.path.join(".") || "the record"}: ${issue.message}` };
}

/** What alerts are about (docs/alerts.md). */
export const ALERT_TYPES = [
  "destination_failing",
  "destination_paused",
  "destination_recovered",
  "deliveries_dead",
  "sender_silent",
] as const;
export type AlertType = (typeof ALERT_TYPES)[number];

/** Where an alert goes: the destination's techContact, its alertWebhook, and the relay's ALERT_WEBHOOK. */
export const ALERT_CHANNELS = ["email", "destinationWebhook", "webhook"] as const;
export type AlertChannel = (typeof ALERT_CHANNELS)[number];

/** One alert: what happened, to which destination, since when, how often, and how the last attempt ended. */
export const alertSchema = z.object({
  /** Stable for the episode and type: a channel that gets the same alert twice can tell. */
  id: z.string(),
  type: z.enum(ALERT_TYPES),
  destination: z.string().optional(),
  /** Failed attempts in a row, dead letters, or minutes of silence: what `type` counts. */
  count: z.int(),
  firstAt: z.number(),
  lastAt: z.number(),
  lastStatus: z.int().optional(),
  lastError: z.string().optional(),
  /** destination_paused: `circuit` or `hand`; deliveries_dead: the last dead letter's reason. */
  reason: z.string().optional(),
  /** destination_paused by the circuit: when the probe goes out. */
  probeAt: z.number().optional(),
  /** Deliveries held when the alert was raised. */
  held: z.int().optional(),
});
export type Alert = z.infer<typeof alertSchema>;

/** An alert on the alerts queue, with the channels still to reach (all when absent) and the tries so far. */
export const alertMessageSchema = z.object({
  kind: z.literal("alert"),
  alert: alertSchema,
  channels: z.array(z.enum(ALERT_CHANNELS)).optional(),
  tries: z.int().min(0).default(0),
});
export type AlertMessage = z.input<typeof alertMessageSchema>;
