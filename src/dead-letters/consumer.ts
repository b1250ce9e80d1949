import { deliveryMessageSchema } from "../delivery/message.ts";
import { describe } from "../errors.ts";
import { log } from "../log.ts";
import { type Env, settingsOf } from "../settings.ts";
import { type DeadLetter, deadLetterSchema } from "./record.ts";
import { putDeadLetter } from "./store.ts";

/**
 * The DEAD_LETTERS consumer: stores each dead letter in STATE. Records come from the delivery consumer;
 * raw delivery messages come from Queues itself when its max_retries ran out; anything else is kept as
 * an unreadable record. A failed write is retried, never dropped.
 */
export async function consumeDeadLetters(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  let ttl: number;
  try {
    ttl = settingsOf(env).deadLetterTtlSeconds;
  } catch (error) {
    log("error", "dead_letter_deferred", { error: describe(error) });
    batch.retryAll({ delaySeconds: 60 });
    return;
  }
  await Promise.all(
    batch.messages.map(async (message) => {
      const record = toRecord(message);
      try {
        await putDeadLetter(env.STATE, record, ttl);
        message.ack();
        log("warn", "dead_letter", {
          deliveryId: record.deliveryId,
          destination: record.destination,
          reason: record.reason,
          attempts: record.attempts,
          lastStatus: record.lastStatus,
          source: record.source,
        });
      } catch (error) {
        log("error", "dead_letter_write_failed", { deliveryId: record.deliveryId, error: describe(error) });
        message.retry({ delaySeconds: 30 });
      }
    }),
  );
}

function toRecord(message: Message<unknown>): DeadLetter {
  const record = deadLetterSchema.safeParse(message.body);
  if (record.success) return record.data;
  // Stable across this message's own retries, so rewriting the record is idempotent.
  const at = message.timestamp.toISOString();
  const delivery = deliveryMessageSchema.safeParse(message.body);
  if (delivery.success) {
    return {
      kind: "dead-letter",
      deliveryId: delivery.data.deliveryId,
      destination: delivery.data.destination,
      reason: "queue_retries_exhausted",
      detail: "Cloudflare Queues gave up on this message (max_retries) before the relay could settle it; replay it.",
      attempts: 0,
      firstAttemptAt: new Date(delivery.data.receivedAt).toISOString(),
      lastAttemptAt: at,
      deadAt: at,
      source: "queue",
      message: delivery.data,
    };
  }
  return {
    kind: "dead-letter",
    deliveryId: `unreadable.${message.id}`,
    destination: "(unknown)",
    reason: "unreadable_message",
    detail: "A message on the dead-letter queue is neither a dead-letter record nor a delivery message.",
    attempts: 0,
    firstAttemptAt: at,
    lastAttemptAt: at,
    deadAt: at,
    source: "queue",
    raw: message.body,
  };
}
