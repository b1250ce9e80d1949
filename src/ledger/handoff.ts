import type { Env } from "../env.ts";
import { describe } from "../errors.ts";
import { log } from "../log.ts";
import type { LedgerRecord } from "../queues/ledger.ts";
import { sendLedgerRecords } from "../queues/send.ts";
import { idsOf, writeLedger } from "./write.ts";

/**
 * Hands records to the ledger queue, whose consumer writes large batches of them in one `db.batch`. Should that
 * fail, they are written to the ledger at once instead; false when neither worked (logged at error with their
 * ids). Never throws: the ledger never fails a delivery (docs/ledger.md).
 */
export async function handToLedger(env: Env, records: readonly LedgerRecord[]): Promise<boolean> {
  if (records.length === 0) return true;
  try {
    await sendLedgerRecords(env.LEDGER_RECORDS, records);
    return true;
  } catch (error) {
    log("warn", "ledger_queue_failed", { records: records.length, error: describe(error) });
  }
  try {
    await writeLedger(env.LEDGER, env.PAYLOADS, records);
    return true;
  } catch (error) {
    log("error", "ledger_write_given_up", { error: describe(error), ...idsOf(records) });
    return false;
  }
}
