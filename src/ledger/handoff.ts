import type { Env } from "../env.ts";
import { describe } from "../errors.ts";
import { log } from "../log.ts";
import type { LedgerRecord } from "../queues/ledger.ts";
import { sendLedgerRecords } from "../queues/send.ts";
import { park } from "./waiting.ts";
import { idsOf, writeLedger } from "./write.ts";

/**
 * Hands records to the ledger queue, whose consumer writes large batches of them in one `db.batch`. Should that
 * fail, they are written to the ledger at once instead, and should that fail too, they wait in R2 for D1
 * (src/ledger/waiting.ts). False only when all three failed (logged at error with their ids): a call record of its
 * own is then kept on its queue, a delivery's attempt is lost. Never throws: the ledger never fails a delivery.
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
    log("warn", "ledger_write_failed", { records: records.length, error: describe(error) });
  }
  try {
    await park(env.PAYLOADS, records);
    log("warn", "ledger_records_waiting", idsOf(records));
    return true;
  } catch (error) {
    log("error", "ledger_records_lost", { error: describe(error), ...idsOf(records) });
    return false;
  }
}
