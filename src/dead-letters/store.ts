import type { DeliveryMessage } from "../delivery/message.ts";
import { type DeadLetter, type DeadLetterMeta, deadKey, deadLetterSchema } from "./record.ts";

/** Dead-letter records in STATE: `dead:<deliveryId>`, the record as JSON, a summary in KV metadata. */
const PREFIX = "dead:";
/** Listing reads every key to order them newest first; past this many the list says it is truncated. */
const LIST_SCAN_LIMIT = 10_000;

/** Writes a record. Idempotent: the same dead letter always lands on the same key with the same value. */
export async function putDeadLetter(state: KVNamespace, record: DeadLetter, ttlSeconds: number): Promise<void> {
  const metadata: DeadLetterMeta = {
    destination: record.destination,
    reason: record.reason,
    deadAt: record.deadAt,
    attempts: record.attempts,
    ...(record.lastStatus !== undefined && { lastStatus: record.lastStatus }),
  };
  await state.put(deadKey(record.deliveryId), JSON.stringify(record), { expirationTtl: ttlSeconds, metadata });
}

/**
 * A stored record, or why it cannot be read (only possible when STATE was written by hand or by
 * another version), or null when there is none.
 */
export async function getDeadLetter(
  state: KVNamespace,
  deliveryId: string,
): Promise<{ record: DeadLetter } | { unreadable: string } | null> {
  const text = await state.get(deadKey(deliveryId), "text");
  if (text === null) return null;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { unreadable: "it is not JSON" };
  }
  const parsed = deadLetterSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { unreadable: `${issue.path.join(".") || "the record"}: ${issue.message}` };
  }
  return { record: parsed.data };
}

export function deleteDeadLetter(state: KVNamespace, deliveryId: string): Promise<void> {
  return state.delete(deadKey(deliveryId));
}

export interface DeadLetterSummary extends DeadLetterMeta {
  deliveryId: string;
}

export interface DeadLetterPage {
  items: DeadLetterSummary[];
  /** Pass as ?cursor= for the next page; absent on the last one. */
  cursor?: string;
  /** True when more than LIST_SCAN_LIMIT records exist and only the first were ordered. */
  truncated: boolean;
}

/** Newest first, optionally for one destination, `limit` at a time after `cursor`. */
export async function listDeadLetters(
  state: KVNamespace,
  options: { destination?: string | undefined; cursor?: string | undefined; limit: number },
): Promise<DeadLetterPage> {
  const all: DeadLetterSummary[] = [];
  let kvCursor: string | undefined;
  let truncated = false;
  do {
    const page: KVNamespaceListResult<DeadLetterMeta> = await state.list<DeadLetterMeta>({
      prefix: PREFIX,
      ...(kvCursor !== undefined && { cursor: kvCursor }),
    });
    for (const key of page.keys) {
      if (key.metadata === undefined || key.metadata === null) continue;
      if (options.destination !== undefined && key.metadata.destination !== options.destination) continue;
      all.push({ deliveryId: key.name.slice(PREFIX.length), ...key.metadata });
    }
    kvCursor = page.list_complete ? undefined : page.cursor;
    if (all.length >= LIST_SCAN_LIMIT && kvCursor !== undefined) {
      truncated = true;
      break;
    }
  } while (kvCursor !== undefined);

  all.sort((a, b) => (a.deadAt === b.deadAt ? compare(a.deliveryId, b.deliveryId) : compare(b.deadAt, a.deadAt)));
  let start = 0;
  const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
  if (after !== undefined) {
    start = all.findIndex((s) => s.deadAt < after.deadAt || (s.deadAt === after.deadAt && s.deliveryId > after.id));
    if (start < 0) start = all.length;
  }
  const items = all.slice(start, start + options.limit);
  const last = items.at(-1);
  const more = start + options.limit < all.length;
  return {
    items,
    ...(more && last !== undefined && { cursor: encodeCursor(last.deadAt, last.deliveryId) }),
    truncated,
  };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function encodeCursor(deadAt: string, id: string): string {
  return btoa(JSON.stringify([deadAt, id]))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replaceAll("=", "");
}

/** undefined for a cursor this relay did not write. */
export function decodeCursor(cursor: string): { deadAt: string; id: string } | undefined {
  try {
    const [deadAt, id] = JSON.parse(atob(cursor.replaceAll("-", "+").replaceAll("_", "/"))) as unknown[];
    if (typeof deadAt === "string" && typeof id === "string") return { deadAt, id };
  } catch {
    // fall through
  }
  return undefined;
}

/**
 * Sends a dead letter's message to DELIVERIES again (same delivery id, attempts start afresh) and only
 * then removes the record, so a failed send leaves it in place.
 */
export async function replayDeadLetters(
  env: { STATE: KVNamespace; DELIVERIES: Queue<DeliveryMessage> },
  records: readonly DeadLetter[],
): Promise<{ replayed: string[]; skipped: { deliveryId: string; reason: string }[] }> {
  const replayable = records.filter((r) => r.message !== undefined);
  const skipped = records
    .filter((r) => r.message === undefined)
    .map((r) => ({ deliveryId: r.deliveryId, reason: "the record holds no readable delivery message" }));
  for (let i = 0; i < replayable.length; i += 100) {
    const chunk = replayable.slice(i, i + 100);
    await env.DELIVERIES.sendBatch(chunk.map((r) => ({ body: r.message!, contentType: "json" as const })));
    await Promise.all(chunk.map((r) => deleteDeadLetter(env.STATE, r.deliveryId)));
  }
  return { replayed: replayable.map((r) => r.deliveryId), skipped };
}
