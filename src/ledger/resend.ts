import { describe } from "../errors.ts";
import { log } from "../log.ts";
import { type Delivery, deliveriesMessage, firstEnqueued } from "../queues/delivery.ts";
import { batchMessages, plan } from "../queues/limits.ts";
import { sendDeliveries } from "../queues/send.ts";
import { markResent } from "./deliveries.ts";

export interface ResendResult {
  replayed: string[];
  skipped: { deliveryId: string; reason: string }[];
}

/** sendBatch calls one resend may make, so that a call stays far inside the Worker's subrequest limits. */
export const RESEND_BATCHES = 20;

/**
 * Sends deliveries again (a replay, a resend): each under its own delivery id, as a new run with attempts
 * afresh, in sendBatch calls within Queues' limits by count and bytes, at most RESEND_BATCHES of them. The
 * ledger marks each `pending` once its message is enqueued. When a sendBatch fails, what it and the later ones
 * held is reported as skipped (and stays as it was); what went before is reported replayed. Throws only when
 * nothing could be enqueued at all.
 */
export async function resend(
  env: { LEDGER: D1Database; DELIVERIES: Queue<string> },
  deliveries: readonly Delivery[],
): Promise<ResendResult & { left: number }> {
  const now = Date.now();
  const planned = deliveries.map((delivery) => {
    const next = plan({ ...firstEnqueued(delivery), run: (delivery.run ?? 0) + 1 });
    return { delivery: next.body, ...deliveriesMessage(next) };
  });
  const batches = batchMessages(planned);
  const taken = batches.slice(0, RESEND_BATCHES);
  const left = batches.slice(RESEND_BATCHES).flat().length;
  const replayed: Delivery[] = [];
  const skipped: ResendResult["skipped"] = [];
  for (const [i, batch] of taken.entries()) {
    try {
      await sendDeliveries(env.DELIVERIES, batch);
    } catch (error) {
      if (replayed.length === 0) throw error;
      for (const rest of taken.slice(i).flat()) {
        skipped.push({
          deliveryId: rest.delivery.deliveryId,
          reason: "not enqueued: the delivery queue failed; nothing changed",
        });
      }
      break;
    }
    replayed.push(...batch.map((m) => m.delivery));
  }
  await markPending(env.LEDGER, replayed, now);
  return { replayed: replayed.map((m) => m.deliveryId), skipped, left };
}

/** The ledger's side of a resend; should it fail, the first attempt of the new run writes the same (logged). */
async function markPending(db: D1Database, deliveries: readonly Delivery[], now: number): Promise<void> {
  try {
    await markResent(db, deliveries, now);
  } catch (error) {
    log("warn", "ledger_resend_mark_failed", { deliveries: deliveries.length, error: describe(error) });
  }
}
