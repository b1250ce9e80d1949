import type { Env } from "../env.ts";
import { describe } from "../errors.ts";
import { log } from "../log.ts";
import { decodeMessage } from "../queues/codec.ts";
import { type LedgerRecord, ledgerMessageSchema } from "../queues/ledger.ts";
import { idsOf, writeLedger } from "./write.ts";

/** Tries of a batch whose ledger write keeps failing, before its records are given up (logged with their ids). */
export const LEDGER_TRIES = 10;

/**
 * The ledger queue's consumer: every record of the batch (up to 100 messages, each a delivery batch's calls
 * and attempts) written in one `db.batch`. A failed write goes back to Queues with a growing delay, 10 s
 * doubling to an hour; after LEDGER_TRIES tries the records are given up and logged at error with their ids,
 * so nothing drops out of sight unannounced. It needs nothing but LEDGER.
 */
export async function consumeLedger(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const records: LedgerRecord[] = [];
  for (const message of batch.messages) {
    const parsed = ledgerMessageSchema.safeParse(decodeMessage(message.body));
    if (parsed.success) records.push(...parsed.data.records);
    else log("error", "ledger_message_unreadable", { messageId: message.id });
  }
  try {
    await writeLedger(env.LEDGER, env.PAYLOADS, records);
    for (const message of batch.messages) message.ack();
    return;
  } catch (error) {
    log("error", "ledger_write_failed", {
      records: records.length,
      tries: batch.messages[0]?.attempts,
      error: describe(error),
    });
  }
  for (const message of batch.messages) {
    if (message.attempts >= LEDGER_TRIES) {
      const parsed = ledgerMessageSchema.safeParse(decodeMessage(message.body));
      log("error", "ledger_write_given_up", {
        tries: message.attempts,
        ...idsOf(parsed.success ? parsed.data.records : []),
      });
      message.ack();
    } else message.retry({ delaySeconds: Math.min(3600, 10 * 2 ** (message.attempts - 1)) });
  }
}
