import { describe } from "../errors.ts";
import { log } from "../log.ts";
import { type LedgerRecord, ledgerMessageSchema } from "../queues/ledger.ts";
import { WAITING_PREFIX } from "../r2-keys.ts";
import { writeLedger } from "./write.ts";

/**
 * The ledger never drops a record (docs/ledger.md, "When D1 is down"). Records whose write keeps failing leave the
 * ledger queue after LEDGER_TRIES tries (hours of retries) and wait here, in R2 (PAYLOADS), one object per message,
 * for as long as it takes: a queue keeps a message at most 14 days and cannot be asked to hand one over sooner.
 * The Cron Trigger and POST /admin/ledger/redrive write them when D1 answers again, oldest first, each object
 * deleted only once its records are written. Losing one takes deleting it by hand.
 */

const PREFIX = WAITING_PREFIX;
/** Objects one redrive writes at most, so that a round stays short whatever the backlog. */
export const REDRIVE_OBJECTS = 50;

/** Keeps `records` waiting; throws when R2 does not take them (the caller then keeps its queue message). */
export async function park(payloads: R2Bucket, records: readonly LedgerRecord[], now = Date.now()): Promise<string> {
  // The time first, so that R2's listing (in key order) is the order they came in.
  const key = `${PREFIX}${String(now).padStart(15, "0")}-${crypto.randomUUID()}.json`;
  await payloads.put(key, JSON.stringify({ kind: "ledger", records }), {
    customMetadata: { records: String(records.length) },
  });
  return key;
}

export interface Waiting {
  /** Records waiting (counted from the objects' metadata). */
  records: number;
  objects: number;
  /** The oldest waiting since, when any wait. */
  since?: string;
  /** True when there were more objects than one count reads (the counts are then at least these). */
  more: boolean;
}

/** How many records wait (GET /admin/stats, the console's overview), reading at most a few listing pages. */
export async function waiting(payloads: R2Bucket | undefined, pages = 5): Promise<Waiting> {
  const counted: Waiting = { records: 0, objects: 0, more: false };
  if (payloads === undefined) return counted;
  let cursor: string | undefined;
  for (let page = 0; page < pages; page++) {
    const listed = await payloads.list({
      prefix: PREFIX,
      include: ["customMetadata"],
      ...(cursor !== undefined && { cursor }),
    });
    for (const object of listed.objects) {
      counted.objects++;
      counted.records += Number(object.customMetadata?.records ?? 0);
      counted.since ??= new Date(Number(object.key.slice(PREFIX.length, PREFIX.length + 15))).toISOString();
    }
    if (!listed.truncated) return counted;
    cursor = listed.cursor;
  }
  counted.more = true;
  return counted;
}

export interface Redriven {
  /** Records written in this round. */
  written: number;
  /** Records still waiting (at least, when `more`). */
  waiting: number;
  more: boolean;
  /** Why the round stopped early, when it did (D1 still failing, say). */
  stopped?: string;
}

/**
 * Writes the waiting records, oldest first, up to REDRIVE_OBJECTS objects; stops at the first write that fails
 * (D1 still down), leaving it and the rest waiting. An object that is not a ledger message (edited by hand) is
 * left in place and logged, never deleted.
 */
export async function redrive(
  db: D1Database,
  payloads: R2Bucket | undefined,
  limit = REDRIVE_OBJECTS,
): Promise<Redriven> {
  if (payloads === undefined) return { written: 0, waiting: 0, more: false };
  const listed = await payloads.list({ prefix: PREFIX, limit });
  let written = 0;
  let stopped: string | undefined;
  for (const { key } of listed.objects) {
    const object = await payloads.get(key);
    if (object === null) continue;
    const parsed = ledgerMessageSchema.safeParse(await object.json().catch(() => undefined));
    if (!parsed.success) {
      log("error", "ledger_waiting_unreadable", { key });
      continue;
    }
    try {
      await writeLedger(db, payloads, parsed.data.records);
    } catch (error) {
      stopped = describe(error);
      break;
    }
    await payloads.delete(key);
    written += parsed.data.records.length;
  }
  const left = await waiting(payloads);
  if (written > 0 || stopped !== undefined) {
    log(stopped === undefined ? "info" : "warn", "ledger_redrive", { written, waiting: left.records, stopped });
  }
  return {
    written,
    waiting: left.records,
    more: stopped === undefined && left.objects > 0,
    ...(stopped !== undefined && { stopped }),
  };
}
