import type { Env } from "../env.ts";
import { describe } from "../errors.ts";
import { log } from "../log.ts";
import { decodeMessage } from "../queues/codec.ts";
import { type LedgerRecord, ledgerMessageSchema } from "../queues/ledger.ts";
import { park } from "./waiting.ts";
import { idsOf, writeLedger } from "./write.ts";

/** Tries of a message whose ledger write keeps failing (10 s doubling to an hour: about 2.5 h) before it waits. */
export const LEDGER_TRIES = 10;

/**
 * The ledger queue's consumer (and its dead-letter queue's): every record of the batch (up to 100 messages, each
 * a delivery batch's calls and attempts) written in one `db.batch`. A failed write goes back to Queues with a
 * growing delay, 10 s doubling to an hour; after LEDGER_TRIES tries, and at once for a message that reached the
 * ledger's dead-letter queue, its records wait in R2 until D1 answers again (src/ledger/waiting.ts). Nothing is
 * given up: a message is acked only once its records are written or waiting. It needs only LEDGER and PAYLOADS.
 */
export async function consumeLedger(batch: MessageBatch<unknown>, env: Env, queue: "ledger" | "failed" = "ledger") {
  const read = batch.messages.map((message) => {
    const parsed = ledgerMessageSchema.safeParse(decodeMessage(message.body));
    if (!parsed.success) log("error", "ledger_message_unreadable", { messageId: message.id });
    return parsed.success ? parsed.data.records : [];
  });
  try {
    await writeLedger(env.LEDGER, env.PAYLOADS, read.flat());
    for (const message of batch.messages) message.ack();
    return;
  } catch (error) {
    log("error", "ledger_write_failed", {
      records: read.flat().length,
      tries: batch.messages[0]?.attempts,
      queue,
      error: describe(error),
    });
  }
  await Promise.all(
    batch.messages.map(async (message, i) => {
      const records = read[i]!;
      if (queue === "ledger" && message.attempts < LEDGER_TRIES) {
        message.retry({ delaySeconds: Math.min(3600, 10 * 2 ** (message.attempts - 1)) });
        return;
      }
      await waitFor(env, records, message);
    }),
  );
}

/** Puts a message's records in the waiting room and acks it; keeps it (an hour) when R2 does not take them either. */
async function waitFor(env: Env, records: readonly LedgerRecord[], message: Message<unknown>): Promise<void> {
  try {
    if (records.length > 0) await park(env.PAYLOADS, records);
    log("warn", "ledger_records_waiting", { tries: message.attempts, records: records.length, ...idsOf(records) });
    message.ack();
  } catch (error) {
    log("error", "ledger_records_kept", { tries: message.attempts, error: describe(error), ...idsOf(records) });
    message.retry({ delaySeconds: 3600 });
  }
}
