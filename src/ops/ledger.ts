import { type Redriven, redrive } from "../ledger/waiting.ts";
import { type OpContext, recorded } from "./record.ts";

/**
 * Writes one bounded round of the ledger records waiting in R2 for D1, oldest first (`ledger.redrive`); the Cron
 * Trigger does the same every ten minutes, unrecorded.
 */
export function redriveLedger(op: OpContext): Promise<Redriven> {
  return recorded(op, { action: "ledger.redrive" }, () => redrive(op.env.LEDGER, op.env.PAYLOADS));
}
