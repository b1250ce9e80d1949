import type { Env } from "../env.ts";
import { describe } from "../errors.ts";
import { handToLedger } from "../ledger/handoff.ts";
import { park } from "../ledger/waiting.ts";
import { writeLedger } from "../ledger/write.ts";
import { log } from "../log.ts";
import { decodeMessage } from "../queues/codec.ts";
import { type DeadLetter, deadLetter, readDeadLetter } from "../queues/dead-letter.ts";
import { readDeliveriesMessage } from "../queues/delivery.ts";
import { DESTINATION_ID } from "../rules/schema.ts";

/**
 * Retries of a record whose write fails, per queue (wrangler.toml `max_retries`, checked by
 * test/queues.test.ts). After DEAD_LETTERS' retries (about 2 days) Queues moves the message to the backstop
 * queue, which this consumer reads too: there a write that fails puts the record in the ledger's waiting room in
 * R2 (src/ledger/waiting.ts) until D1 answers, so a dead letter is never dropped. Every failed try is logged at
 * error.
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
  // A call's record that Queues gave up on (it rode DELIVERIES alone) is the ledger's, not a dead letter.
  const messages: Message<unknown>[] = [];
  for (const message of batch.messages) {
    const read = readDeliveriesMessage(decodeMessage(message.body));
    if (read.delivery !== undefined || read.call === undefined) messages.push(message);
    else if (await handToLedger(env, [read.call])) message.ack();
    else message.retry({ delaySeconds: retryDelay(queue, message.attempts) });
  }
  const records = messages.map(toRecord);
  if (records.length === 0) return;
  try {
    await writeLedger(
      env.LEDGER,
      env.PAYLOADS,
      records.map((record) => ({ kind: "dead", record })),
    );
  } catch (error) {
    await Promise.all(
      messages.map(async (message, i) => {
        const record = records[i]!;
        log("error", "dead_letter_write_failed", {
          deliveryId: record.deliveryId,
          destination: record.destination,
          queue,
          tries: message.attempts,
          error: describe(error),
        });
        // Days of retries on DEAD_LETTERS came before the backstop: there, it waits for D1 in R2 instead.
        if (queue === "backstop") {
          try {
            await park(env.PAYLOADS, [{ kind: "dead", record }]);
            log("warn", "ledger_records_waiting", { deliveries: [record.deliveryId] });
            message.ack();
            return;
          } catch (parkError) {
            log("error", "ledger_records_kept", { deliveries: [record.deliveryId], error: describe(parkError) });
          }
        }
        message.retry({ delaySeconds: retryDelay(queue, message.attempts) });
      }),
    );
    return;
  }
  await tellGates(env, records);
  for (const [i, message] of messages.entries()) {
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
