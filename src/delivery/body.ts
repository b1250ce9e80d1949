import { withClaims } from "../payloads.ts";
import type { Delivery } from "../queues/delivery.ts";

/**
 * The bytes a receiver gets for attempt `attempt` of a delivery (docs/delivery.md, "What a receiver gets"): the
 * sender's own text with only this delivery's notifications and the relay's Attempt, every claimed notification
 * read back from PAYLOADS. The sender, the trace and the dead-letter page all read a body here.
 * Throws ClaimUnreadable (src/payloads.ts) when a claim cannot be read.
 */
export async function bodyFor(delivery: Delivery, attempt: number, payloads: R2Bucket | undefined): Promise<string> {
  return withClaims(bodyOf(delivery, attempt), delivery.claims, payloads);
}

/** The text of attempt `attempt` with each claim still a mark: the whole body for a delivery without claims. */
export const bodyOf = (delivery: Delivery, attempt: number): string => `${delivery.head}${attempt}${delivery.tail}`;
