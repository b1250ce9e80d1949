import type { Env } from "../env.ts";
import { describe } from "../errors.ts";
import { writeLedger } from "../ledger/write.ts";
import { log } from "../log.ts";
import { type DeadLetter, deadLetter, decodeMessage, readDeadLetter, readDeliveryMessage } from "../queues.ts";

/**
 * Retries of a record whose write fails, per queue (wrangler.toml `max_retries`, checked by
 * test/queues.test.ts). After DEAD_LETTERS' retries (about 2 days) Queues moves the message to the backstop
 * queue, which this consumer reads too (about 3 days more); only then would a record be dropped, and every
 * failed try before that is logged at error. Each queue's share stays inside Queues' default retention of
 * 4 days, so no message expires while it is still being retried.
 */
export const DEAD_LETTER_RETRIES = { deadLetters: 100, backstop: 100 } as const;

/**
 * The DEAD_LETTERS consumer (and the backstop queue's): writes each dead letter into the ledger, where it is a
 * delivery with status `dead`, in one `db.batch` per queue batch. Records come from the delivery consumer;
 * raw delivery messages come from Queues itself when its max_retries ran out; anything else is kept as an
 * unreadable record. It needs nothing but LEDGER: a bad var cannot stop it.
 */
export async function consumeDeadLetters(
  batch: MessageBatch<unknown>,
  env: Env,
  queue: "deadLetters" | "backstop",
): Promise<void> {
  const records = batch.messages.map(toRecord);
  try {
    await writeLedger(
      env.LEDGER,
      records.map((record) => ({ kind: "dead", record })),
    );
  } catch (error) {
    batch.messages.forEach((message, i) => {
      const record = records[i]!;
      const last = queue === "backstop" && message.attempts >= DEAD_LETTER_RETRIES.backstop;
      log("error", last ? "dead_letter_dropped" : "dead_letter_write_failed", {
        deliveryId: record.deliveryId,
        destination: record.destination,
        queue,
        tries: message.attempts,
        error: describe(error),
      });
      message.retry({ delaySeconds: retryDelay(queue, message.attempts) });
    });
    return;
  }
  for (const [i, message] of batch.messages.entries()) {
    const record = records[i]!;
    message.ack();
    log("warn", "dead_letter", {
      deliveryId: record.deliveryId,
      destination: record.destination,
      reason: record.reason,
      attempts: record.attempts,
      lastStatus: record.lastStatus,
      source: record.source,
    });
  }
}

/** 5 s doubling to 30 min on DEAD_LETTERS; every 45 min on the backstop. */
function retryDelay(queue: "deadLetters" | "backstop", tries: number): number {
  if (queue === "backstop") return 2700;
  return Math.min(1800, 5 * 2 ** Math.min(Math.max(tries - 1, 0), 20));
}

function toRecord(message: Message<unknown>): DeadLetter {
  const body = decodeMessage(message.body);
  const read = readDeadLetter(body);
  if ("record" in read) return read.record;
  // Stable across this message's own retries, so rewriting the record is idempotent.
  const at = message.timestamp;
  const delivery = readDeliveryMessage(body);
  if (delivery !== undefined) {
    return deadLetter({
      deliveryId: delivery.deliveryId,
      destination: delivery.destination,
      reason: "queue_retries_exhausted",
      detail: "Cloudflare Queues gave up on this message (max_retries) before the relay could settle it; replay it.",
      attempts: 0,
      firstAttemptAt: new Date(delivery.receivedAt),
      at,
      source: "queue",
      message: delivery,
    });
  }
  return deadLetter({
    deliveryId: `unreadable.${message.id}`,
    destination: "(unknown)",
    reason: "unreadable_message",
    detail: "A message on the dead-letter queue is neither a dead-letter record nor a delivery message.",
    attempts: 0,
    firstAttemptAt: at,
    at,
    source: "queue",
    raw: message.body,
  });
}
