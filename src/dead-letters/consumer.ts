import type { Env } from "../env.ts";
import { describe } from "../errors.ts";
import { writeLedger } from "../ledger/write.ts";
import { log } from "../log.ts";
import { decodeMessage } from "../queues/codec.ts";
import { type DeadLetter, deadLetter, readDeadLetter } from "../queues/dead-letter.ts";
import { readDeliveriesMessage } from "../queues/delivery.ts";
import { DESTINATION_ID } from "../rules/schema.ts";

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
 * unreadable record. It needs nothing but LEDGER: a bad var cannot stop it. Each destination's gate is then
 * told of its dead letters for the deliveries_dead alert, when it can be (a failure there is only logged).
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
      env.PAYLOADS,
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
  await tellGates(env, records);
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

/**
 * Tells each destination's gate how many of its deliveries became dead letters, for the grouped
 * deliveries_dead alert (src/gate/). Logged, never thrown: an alert never holds up a dead letter.
 */
async function tellGates(env: Env, records: readonly DeadLetter[]): Promise<void> {
  const byDestination = new Map<string, DeadLetter[]>();
  for (const record of records) {
    if (!DESTINATION_ID.test(record.destination)) continue;
    byDestination.set(record.destination, [...(byDestination.get(record.destination) ?? []), record]);
  }
  await Promise.all(
    [...byDestination].map(async ([destination, dead]) => {
      const last = dead.reduce((a, b) => (Date.parse(b.deadAt) >= Date.parse(a.deadAt) ? b : a));
      try {
        await env.GATES.getByName(destination).dead(destination, {
          count: dead.length,
          at: Date.parse(last.deadAt),
          reason: last.reason,
          ...(last.lastStatus !== undefined && { lastStatus: last.lastStatus }),
          ...(last.lastError !== undefined && { lastError: last.lastError }),
        });
      } catch (error) {
        log("warn", "gate_report_failed", { destination, outcome: "dead", error: describe(error) });
      }
    }),
  );
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
  const { delivery } = readDeliveriesMessage(body);
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
