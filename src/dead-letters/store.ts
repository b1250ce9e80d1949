import { batchMessages, type PlannedMessage, utf8Length } from "../delivery/planner.ts";
import { DEAD_LETTER_PREFIX, deadLetterKey } from "../kv-keys.ts";
import { type DeadLetter, encodeMessage, readDeadLetter } from "../queues.ts";

/** Dead-letter records in STATE: the record as JSON text under `dead:<deliveryId>`, a summary in KV metadata. */

/** Listing reads every key to order them newest first; past this many the list says it is truncated. */
const LIST_SCAN_LIMIT = 10_000;

/** What KV keeps beside each record so that listing needs no extra reads. */
export interface DeadLetterMeta {
  destination: string;
  reason: string;
  deadAt: string;
  attempts: number;
  lastStatus?: number;
}

/** Writes a record. Idempotent: the same dead letter always lands on the same key with the same value. */
export async function putDeadLetter(state: KVNamespace, record: DeadLetter, ttlSeconds: number): Promise<void> {
  const metadata: DeadLetterMeta = {
    destination: record.destination,
    reason: record.reason,
    deadAt: record.deadAt,
    attempts: record.attempts,
    ...(record.lastStatus !== undefined && { lastStatus: record.lastStatus }),
  };
  await state.put(deadLetterKey(record.deliveryId), JSON.stringify(record), { expirationTtl: ttlSeconds, metadata });
}

/**
 * A stored record, or why it cannot be read (only possible when STATE was written by hand or by another
 * version), or null when there is none.
 */
export async function getDeadLetter(
  state: KVNamespace,
  deliveryId: string,
): Promise<{ record: DeadLetter } | { unreadable: string } | null> {
  const text = await state.get(deadLetterKey(deliveryId), "text");
  if (text === null) return null;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { unreadable: "it is not JSON" };
  }
  const read = readDeadLetter(json);
  return "record" in read ? read : { unreadable: read.problem };
}

export function deleteDeadLetter(state: KVNamespace, deliveryId: string): Promise<void> {
  return state.delete(deadLetterKey(deliveryId));
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
      prefix: DEAD_LETTER_PREFIX,
      ...(kvCursor !== undefined && { cursor: kvCursor }),
    });
    for (const key of page.keys) {
      if (key.metadata === undefined || key.metadata === null) continue;
      if (options.destination !== undefined && key.metadata.destination !== options.destination) continue;
      all.push({ deliveryId: key.name.slice(DEAD_LETTER_PREFIX.length), ...key.metadata });
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
 * Records one bulk replay call takes on. Each costs two KV operations (read, delete) besides the listing and
 * the sendBatch calls, so a call stays far inside the Worker's subrequest limit (50 on the free plan).
 */
export const REPLAY_BATCH = 20;
const REPLAY_LIST_PAGES = 5;

/**
 * The delivery ids of up to `limit` dead letters (of one destination, when given), in key order, and whether
 * more may exist beyond them.
 */
export async function pickDeadLetters(
  state: KVNamespace,
  destination: string | undefined,
  limit: number,
): Promise<{ ids: string[]; more: boolean }> {
  const ids: string[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < REPLAY_LIST_PAGES; page++) {
    const listed: KVNamespaceListResult<DeadLetterMeta> = await state.list<DeadLetterMeta>({
      prefix: DEAD_LETTER_PREFIX,
      ...(cursor !== undefined && { cursor }),
    });
    for (const [i, key] of listed.keys.entries()) {
      if (destination !== undefined && key.metadata?.destination !== destination) continue;
      ids.push(key.name.slice(DEAD_LETTER_PREFIX.length));
      if (ids.length === limit) return { ids, more: i < listed.keys.length - 1 || !listed.list_complete };
    }
    if (listed.list_complete) return { ids, more: false };
    cursor = listed.cursor;
  }
  return { ids, more: true };
}

export interface ReplayResult {
  replayed: string[];
  skipped: { deliveryId: string; reason: string }[];
}

/**
 * Sends dead letters' messages to DELIVERIES again (same delivery id, attempts start afresh), in sendBatch
 * calls within Queues' limits by count and bytes, and removes each record once its message is enqueued. When
 * a sendBatch fails, what it and later batches held stays stored and is reported as skipped; what went
 * before is reported replayed. Throws only when nothing could be enqueued at all.
 */
export async function replayDeadLetters(
  env: { STATE: KVNamespace; DELIVERIES: Queue<string> },
  records: readonly DeadLetter[],
): Promise<ReplayResult> {
  const skipped: ReplayResult["skipped"] = [];
  const planned: PlannedMessage[] = [];
  for (const record of records) {
    if (record.message === undefined) {
      skipped.push({ deliveryId: record.deliveryId, reason: "the record holds no readable delivery message" });
      continue;
    }
    // Attempts start afresh: the message goes out as the door first enqueued it.
    const { attempts: _, ...message } = record.message;
    const text = encodeMessage(message);
    planned.push({ body: message, bytes: utf8Length(text), text });
  }
  const replayed: string[] = [];
  const batches = batchMessages(planned);
  for (const [i, batch] of batches.entries()) {
    try {
      await env.DELIVERIES.sendBatch(batch.map((m) => ({ body: m.text, contentType: "text" as const })));
    } catch (error) {
      if (replayed.length === 0) throw error;
      for (const rest of batches.slice(i).flat()) {
        skipped.push({
          deliveryId: rest.body.deliveryId,
          reason: "not enqueued: the delivery queue failed; still stored",
        });
      }
      break;
    }
    // A record whose delete fails stays stored: replaying it again resends under the same delivery id.
    await Promise.allSettled(batch.map((m) => deleteDeadLetter(env.STATE, m.body.deliveryId)));
    replayed.push(...batch.map((m) => m.body.deliveryId));
  }
  return { replayed, skipped };
}
