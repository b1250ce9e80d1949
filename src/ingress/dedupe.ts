import { describe } from "../errors.ts";
import { seenKey } from "../kv-keys.ts";
import { log } from "../log.ts";

/**
 * Best-effort dedupe of the sender's retries (docs/delivery.md, “The door”). Two layers:
 * - this isolate's memory of the Ids it accepted lately, which answers an identical resend for free;
 * - STATE `seen:<Id>`, written (after every enqueue succeeded, off the response's path) for
 *   DEDUP_TTL_SECONDS and read only for calls whose `Attempt` is not 1: the sender counts its retries
 *   (Extend sends 1, 2, 3), so a first attempt cannot repeat a call it already made, and most calls skip the KV read.
 * A duplicate that slips through both is harmless: its deliveries get the same delivery ids.
 * DEDUP_TTL_SECONDS=0 turns the STATE layer off (each accepted call then costs no KV write).
 */

const RECENT_LIMIT = 10_000;
const recent = new Set<string>();

/** Forget this isolate's memory (between tests). */
export function resetRecentIds(): void {
  recent.clear();
}

export async function wasSeen(state: KVNamespace, id: string, attempt: unknown, ttlSeconds: number): Promise<boolean> {
  if (recent.has(id)) return true;
  if (attempt === 1 || ttlSeconds === 0) return false;
  try {
    return (await state.get(seenKey(id))) !== null;
  } catch (error) {
    log("warn", "dedupe_read_failed", { id, error: describe(error) });
    return false;
  }
}

/**
 * Remembers an accepted call in memory at once and in STATE in the background; with
 * DEDUP_TTL_SECONDS=0 in memory only.
 */
export async function remember(state: KVNamespace, id: string, ttlSeconds: number): Promise<void> {
  recent.add(id);
  if (recent.size > RECENT_LIMIT) recent.delete(recent.values().next().value!);
  if (ttlSeconds === 0) return;
  await state
    .put(seenKey(id), "1", { expirationTtl: ttlSeconds })
    .catch((error: unknown) => log("warn", "dedupe_write_failed", { id, error: describe(error) }));
}
