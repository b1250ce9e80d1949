import { describe } from "../errors.ts";
import { hasCall } from "../ledger/calls.ts";
import { log } from "../log.ts";

/**
 * Dedupe of the sender's retries (docs/delivery.md, “The door”). Two layers:
 * - this isolate's memory of the Ids it accepted lately, which answers an identical resend for free;
 * - the ledger, asked only for calls whose `Attempt` is not 1: the sender counts its retries (1, 2, 3), so a
 *   first attempt cannot repeat a call it already made, and the door reads nothing for almost every call.
 * A call is in the ledger once the consumer wrote its record, a second or so after it was accepted, long before
 * the sender's first retry (a minute later). A first attempt sent again (a captured call) is caught by the
 * delivery consumer instead, which never delivers a call on record again (src/delivery/consumer.ts).
 */

const RECENT_LIMIT = 10_000;
const recent = new Set<string>();

/** Forget this isolate's memory (between tests). */
export function resetRecentIds(): void {
  recent.clear();
}

export async function wasSeen(ledger: D1Database, id: string, attempt: unknown): Promise<boolean> {
  if (recent.has(id)) return true;
  if (attempt === 1) return false;
  try {
    return await hasCall(ledger, id);
  } catch (error) {
    log("warn", "dedupe_read_failed", { id, error: describe(error) });
    return false;
  }
}

/** Remembers an accepted call in this isolate (the ledger learns of it from the call's record). */
export function remember(id: string): void {
  recent.add(id);
  if (recent.size > RECENT_LIMIT) recent.delete(recent.values().next().value!);
}
