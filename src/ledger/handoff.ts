import { batchMessages, MESSAGE_BUDGET, utf8Length } from "../delivery/planner.ts";
import type { Env } from "../env.ts";
import { describe } from "../errors.ts";
import { log } from "../log.ts";
import type { AttemptRecord, CallRecord, HeldRecord } from "../queues.ts";
import { idsOf, writeLedger } from "./write.ts";

/** What the delivery consumer and the gates hand to the ledger. */
export type HandedRecord = CallRecord | AttemptRecord | HeldRecord;

/**
 * Hands records to the ledger queue (in messages within Queues' limits), whose consumer writes large batches of
 * them in one `db.batch`. Should that fail, they are written to the ledger at once instead; false when neither
 * worked (logged at error with their ids). Never throws: the ledger never fails a delivery (docs/ledger.md).
 */
export async function handToLedger(env: Env, records: readonly HandedRecord[]): Promise<boolean> {
  if (records.length === 0) return true;
  try {
    for (const batch of batchMessages(ledgerMessages(records))) {
      await env.LEDGER_RECORDS.sendBatch(batch.map((m) => ({ body: m.text, contentType: "text" as const })));
    }
    return true;
  } catch (error) {
    log("warn", "ledger_queue_failed", { records: records.length, error: describe(error) });
  }
  try {
    await writeLedger(env.LEDGER, records);
    return true;
  } catch (error) {
    log("error", "ledger_write_given_up", { error: describe(error), ...idsOf(records) });
    return false;
  }
}

/** Ledger messages (src/queues.ts, LedgerMessage) holding `records`, each within a queue message's budget. */
function ledgerMessages(records: readonly HandedRecord[]): { text: string; bytes: number }[] {
  const messages: { text: string; bytes: number }[] = [];
  const open = '{"kind":"ledger","records":[';
  let parts: string[] = [];
  let bytes = open.length + 2;
  const flush = () => {
    if (parts.length > 0) messages.push({ text: `${open}${parts.join(",")}]}`, bytes });
    parts = [];
    bytes = open.length + 2;
  };
  for (const record of records) {
    const text = JSON.stringify(record);
    const size = utf8Length(text) + 1;
    if (parts.length > 0 && bytes + size > MESSAGE_BUDGET) flush();
    parts.push(text);
    bytes += size;
  }
  flush();
  return messages;
}
