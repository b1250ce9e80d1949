import * as z from "zod";
import { notificationSchema } from "../extend/envelope.ts";

/**
 * One queue message on DELIVERIES: one downstream request to one destination (SPEC §4). It carries the
 * sender's envelope fields, the notifications matched for this destination in their original order, the
 * routes that picked them and a delivery id that is stable across attempts, replays and sender retries.
 */
export const deliveryMessageSchema = z.object({
  v: z.literal(1),
  deliveryId: z.string().min(1),
  destination: z.string().min(1),
  routes: z.array(z.string()),
  /** The sender's top-level fields except `Notifications` (Id, Attempt, Properties and any unknown ones). */
  envelope: z.looseObject({ Id: z.string() }),
  notifications: z.array(notificationSchema),
  /** Part k of n when one destination's notifications had to be split over several messages. */
  part: z.tuple([z.int(), z.int()]).optional(),
  /** When the relay accepted the sender's call (ms since epoch). */
  receivedAt: z.number(),
});

export type DeliveryMessage = z.infer<typeof deliveryMessageSchema>;
