import * as z from "zod";
import { claimSchema } from "./claim.ts";

/**
 * What the ledger needs to know of a call the door answered 2xx: sent on DELIVERIES in the same sendBatch as the
 * call's deliveries (beside the last of them when it fits, else in messages of its own) and handed on to the
 * ledger by the delivery consumer. A call with many notifications has its rows split over parts; the part with
 * `summary` is enqueued last, so that a call is on record as accepted only once all of it is enqueued. A
 * duplicate's record only adds the sender's attempt.
 */
export const callRecordSchema = z.object({
  kind: z.literal("call"),
  /** 1: what relay 0.1 enqueued (its text possibly in parts); 2: the text whole, or claimed. */
  v: z.union([z.literal(1), z.literal(2)]),
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
   * The call's text as the sender wrote it, kept once per call so that any of its deliveries can be sent again;
   * each claimed notification stands there as its mark (src/queues/claim.ts). Relay 0.1 sent it in parts.
   */
  text: z.union([z.string(), z.object({ part: z.int(), of: z.int(), chunk: z.string() })]).optional(),
  /** The text kept in PAYLOADS instead, when it is too large to ride in a queue message. */
  textClaim: claimSchema.optional(),
  /** The notifications kept in PAYLOADS, in the order of their marks. */
  claims: z.array(claimSchema).optional(),
});

export type CallRecord = z.infer<typeof callRecordSchema>;
