import { withClaims } from "../payloads.ts";
import { CLAIM_MARKS } from "../queues/claim.ts";
import type { Delivery } from "../queues/delivery.ts";
import type { Destination } from "../rules/schema.ts";
import { transform } from "./transform.ts";

/**
 * The bytes a receiver gets for attempt `attempt` of a delivery (docs/delivery.md, "What a receiver gets"): the
 * sender's own text with only this delivery's notifications and the relay's Attempt, every claimed notification
 * read back from PAYLOADS; or, for a destination with a `transform`, what the expression makes of its notification
 * (of each, as a JSON array, for a delivery planned with several before the destination had one). The sender, the
 * trace and the dead-letter page all read a body here. Throws ClaimUnreadable (src/payloads.ts) when a claim
 * cannot be read, TransformFailed (src/delivery/transform.ts) when the expression fails.
 */
export async function bodyFor(
  delivery: Delivery,
  attempt: number,
  payloads: R2Bucket | undefined,
  destination?: Pick<Destination, "transform">,
): Promise<string> {
  const text = await withClaims(bodyOf(delivery, attempt), delivery.claims, payloads);
  if (destination?.transform === undefined) return text;
  const notifications = (JSON.parse(text) as { Notifications: { Action: string }[] }).Notifications;
  const bindings = (notification: { Action: string }) => ({
    action: notification.Action,
    callId: delivery.callId,
    receivedAt: new Date(delivery.receivedAt).toISOString(),
    destination: delivery.destination,
  });
  const shaped = await Promise.all(notifications.map((n) => transform(destination.transform!, n, bindings(n))));
  return shaped.length === 1 ? shaped[0]! : `[${shaped.join(",")}]`;
}

/** The text of attempt `attempt` with each claim still a mark: the whole body for a delivery without claims. */
export const bodyOf = (delivery: Delivery, attempt: number): string => `${delivery.head}${attempt}${delivery.tail}`;

/**
 * About what building a delivery's body holds in memory, in bytes, for its claims (0 without): each object read
 * (a body kept whole is at least as long as its furthest claim), and its texts three times over (decoded, put in
 * the body, encoded for the request).
 */
export function claimedMemory(delivery: Delivery): number {
  if (delivery.claims === undefined || delivery.claims.length === 0) return 0;
  const objects = new Map<string, number>();
  let texts = 0;
  for (const mark of `${delivery.head}${delivery.tail}`.matchAll(CLAIM_MARKS)) {
    const claim = delivery.claims[Number(mark[1])];
    if (claim === undefined) continue;
    objects.set(claim.key, Math.max(objects.get(claim.key) ?? 0, (claim.offset ?? 0) + claim.bytes));
    texts += claim.bytes;
  }
  let held = 3 * texts;
  for (const bytes of objects.values()) held += bytes;
  return held;
}
