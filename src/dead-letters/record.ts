import * as z from "zod";
import { deliveryMessageSchema } from "../delivery/message.ts";

/**
 * A delivery that will not be retried any more: what it was, where it was going, and why it stopped.
 * Sent on DEAD_LETTERS by the delivery consumer, stored in STATE as `dead:<deliveryId>`.
 */
export const deadLetterSchema = z.object({
  kind: z.literal("dead-letter"),
  deliveryId: z.string(),
  destination: z.string(),
  /** Stable code: http_status, attempts_exhausted, destination_missing, destination_disabled, secret_missing, … */
  reason: z.string(),
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
  /** The queue message as it was enqueued; replay sends it again. Absent only when unreadable. */
  message: deliveryMessageSchema.optional(),
  /** What was on the queue when it could not be read as a delivery message. */
  raw: z.unknown().optional(),
});

export type DeadLetter = z.infer<typeof deadLetterSchema>;

export const deadKey = (deliveryId: string) => `dead:${deliveryId}`;

/** What KV keeps beside each record so that listing needs no extra reads. */
export interface DeadLetterMeta {
  destination: string;
  reason: string;
  deadAt: string;
  attempts: number;
  lastStatus?: number;
}
