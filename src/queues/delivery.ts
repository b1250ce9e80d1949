import * as z from "zod";
import { notificationSchema } from "../extend/envelope.ts";
import { type CallRecord, callRecordSchema } from "./call.ts";
import { claimSchema } from "./claim.ts";
import type { Planned } from "./limits.ts";

/**
 * One downstream request to one destination (docs/delivery.md): the request body as the text before and after its
 * `Attempt` value (the sender's own text, src/extend/envelope.ts), which notifications of the call it holds, the
 * routes that picked them, and a delivery id that is stable across attempts, replays and sender retries.
 */
export const deliverySchema = z.object({
  v: z.literal(3),
  deliveryId: z.string().min(1),
  destination: z.string().min(1),
  routes: z.array(z.string()),
  /** The sender's call Id. */
  callId: z.string(),
  /** The positions in the call of the notifications this request holds, in order. */
  indices: z.array(z.int()),
  head: z.string(),
  tail: z.string(),
  /** Notifications kept in PAYLOADS, in the order of their marks in `head` and `tail` (src/queues/claim.ts). */
  claims: z.array(claimSchema).optional(),
  /** Part k of n when one destination's notifications had to be split over several messages. */
  part: z.tuple([z.int(), z.int()]).optional(),
  /** When the relay accepted the sender's call (ms since epoch). */
  receivedAt: z.number(),
  /**
   * The business keys of its notifications, for a destination with `order: "key"` (docs/rules.md, "Shaping
   * deliveries"): its gate sends deliveries sharing a key one at a time, in the order the relay accepted them.
   */
  keys: z.array(z.string()).optional(),
  /** A coalesced notification's [Action, business key, warehouse] (as JSON text) and its window in seconds. */
  coalesce: z.object({ key: z.string(), window: z.int().min(1) }).optional(),
  /** Attempts already made in this run (absent: none). The next attempt is number attempts + 1. */
  attempts: z.int().min(0).optional(),
  /** Replays so far (absent: none); a replay starts a new run with attempts afresh. */
  run: z.int().min(0).optional(),
});

export type Delivery = z.infer<typeof deliverySchema>;

/** What relay 0.1 enqueued first (version 1, contentType json): still read, so that messages in flight go out. */
const version1Schema = z.object({
  v: z.literal(1),
  deliveryId: z.string().min(1),
  destination: z.string().min(1),
  routes: z.array(z.string()),
  envelope: z.looseObject({ Id: z.string() }),
  notifications: z.array(notificationSchema),
  part: z.tuple([z.int(), z.int()]).optional(),
  receivedAt: z.number(),
});

/** What relay 0.1 enqueued later (version 2): a delivery with the call's record riding on it. */
const version2Schema = deliverySchema.omit({ v: true, claims: true }).extend({
  v: z.literal(2),
  record: callRecordSchema.optional(),
});

const ATTEMPT_MARK = "\u0000attempt\u0000";

function fromVersion1(old: z.infer<typeof version1Schema>): Delivery {
  const { envelope, notifications, v: _, ...rest } = old;
  const text = JSON.stringify({ ...envelope, Attempt: ATTEMPT_MARK, Notifications: notifications });
  const [head, tail] = text.split(`${JSON.stringify(ATTEMPT_MARK)}`) as [string, string];
  return { v: 3, ...rest, callId: envelope.Id, indices: notifications.map((_n, i) => i), head, tail };
}

/** A delivery (one of an older relay's, converted), or undefined when `value` is not one. */
export function readDelivery(value: unknown): Delivery | undefined {
  return readDeliveryWithCall(value)?.delivery;
}

function readDeliveryWithCall(value: unknown): { delivery: Delivery; call?: CallRecord } | undefined {
  const version = typeof value === "object" && value !== null ? (value as { v?: unknown }).v : undefined;
  if (version === 3) {
    const current = deliverySchema.safeParse(value);
    return current.success ? { delivery: current.data } : undefined;
  }
  if (version === 2) {
    const old = version2Schema.safeParse(value);
    if (!old.success) return undefined;
    const { record, v: _, ...rest } = old.data;
    return { delivery: { v: 3, ...rest }, ...(record !== undefined && { call: record }) };
  }
  const oldest = version1Schema.safeParse(value);
  return oldest.success ? { delivery: fromVersion1(oldest.data) } : undefined;
}

/**
 * What a message on DELIVERIES holds: a delivery, the call's record riding beside it, or both; `unreadable` when
 * it is neither (it then becomes a dead letter that keeps what it was).
 */
export type DeliveriesMessage =
  | { delivery: Delivery; call?: CallRecord }
  | { delivery?: undefined; call: CallRecord }
  | { delivery?: undefined; call?: undefined; unreadable: true };

/** The one reader of DELIVERIES' messages (src/queues/send.ts writes them). */
export function readDeliveriesMessage(value: unknown): DeliveriesMessage {
  if (typeof value === "object" && value !== null) {
    const object = value as { kind?: unknown; v?: unknown; delivery?: unknown; call?: unknown };
    if (object.kind === "call") {
      const call = callRecordSchema.safeParse(value);
      return call.success ? { call: call.data } : { unreadable: true };
    }
    if ("delivery" in object) {
      const delivery = readDelivery(object.delivery);
      if (delivery === undefined) return { unreadable: true };
      if (object.call === undefined) return { delivery };
      const call = callRecordSchema.safeParse(object.call);
      return call.success ? { delivery, call: call.data } : { unreadable: true };
    }
    // An older relay's delivery, bare (with the call's record riding on it at version 2).
    if (object.v !== 3) {
      const old = readDeliveryWithCall(value);
      if (old !== undefined) return old;
    }
  }
  return { unreadable: true };
}

/**
 * The one constructor of a message on DELIVERIES: the delivery, with the call's record beside it when it rides
 * along. The texts are made already: joined, they are exactly the JSON of `{delivery, call}`, without escaping the
 * call's text again on the door's path.
 */
export function deliveriesMessage(delivery: Planned<Delivery>, call?: Planned<CallRecord>): Planned<unknown> {
  if (call === undefined) {
    return { body: { delivery: delivery.body }, text: `{"delivery":${delivery.text}}`, bytes: delivery.bytes + 13 };
  }
  return {
    body: { delivery: delivery.body, call: call.body },
    text: `{"delivery":${delivery.text},"call":${call.text}}`,
    bytes: delivery.bytes + call.bytes + 21,
  };
}

/** What `deliveriesMessage` adds around a delivery's own text (and around a riding call record's). */
export const WRAPPER_BYTES = { delivery: 13, withCall: 21 } as const;

/** The delivery as the door first enqueued it in its run: no attempts counted yet. */
export function firstEnqueued(delivery: Delivery): Delivery {
  const { attempts: _, ...first } = delivery;
  return first;
}

/** The message of the delivery's next attempt: the same delivery, counting the attempts made. */
export function nextAttempt(delivery: Delivery, attempts: number): string {
  const text = JSON.stringify({ ...delivery, attempts });
  return `{"delivery":${text}}`;
}
