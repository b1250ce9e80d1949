import { RelayError } from "../errors.ts";
import { getDelivery } from "../ledger/deliveries.ts";
import { type ResendResult, resend } from "../ledger/resend.ts";
import { type OpContext, recorded } from "./record.ts";

/** The delivery, or 404 `delivery_not_found`. */
export async function foundDelivery(env: OpContext["env"], id: string) {
  const delivery = await getDelivery(env.LEDGER, env.PAYLOADS, id);
  if (delivery === null) {
    throw new RelayError("delivery_not_found", `The ledger has no delivery ${id} (never planned, or past retention).`);
  }
  return delivery;
}

/** Superseded deliveries followed this far at most to the one that carried the latest state. */
const SUPERSEDED_HOPS = 50;

/**
 * The delivery that carries what `delivery` would: itself, or for a superseded one (coalescing) the delivery that
 * superseded it, followed to the latest state (docs/rules.md, "Shaping deliveries").
 */
async function latestState(env: OpContext["env"], delivery: Awaited<ReturnType<typeof foundDelivery>>) {
  let current = delivery;
  for (let hop = 0; hop < SUPERSEDED_HOPS && current.supersededBy !== undefined; hop++) {
    current = await foundDelivery(env, current.supersededBy);
  }
  return current;
}

/**
 * Sends a delivery again, whatever its status (`delivery.resend`): same delivery id, a new run with attempts
 * afresh (POST /admin/deliveries/:id/replay, and the console's "Resend"). A superseded one sends the latest state
 * of what it was about instead: the delivery that superseded it.
 */
export async function resendDelivery(op: OpContext, id: string): Promise<ResendResult> {
  const delivery = await latestState(op.env, await foundDelivery(op.env, id));
  const message = delivery.message;
  if (delivery.unreadable) {
    throw new RelayError("not_replayable", `Delivery ${delivery.deliveryId} holds no readable delivery message.`);
  }
  if (message === undefined) {
    throw new RelayError(
      "delivery_not_replayable",
      `Delivery ${delivery.deliveryId} has no stored message yet (it is ${delivery.status}: on its way, not yet attempted).`,
    );
  }
  const change = {
    action: "delivery.resend" as const,
    target: id,
    detail: {
      destination: delivery.destination,
      status: delivery.status,
      ...(delivery.deliveryId !== id && { sent: delivery.deliveryId }),
    },
  };
  return recorded(op, change, async () => {
    let result: ResendResult;
    try {
      result = await resend(op.env, [message]);
    } catch {
      throw new RelayError("queue_unavailable", "The delivery could not be enqueued; nothing changed. Try again.");
    }
    return { replayed: result.replayed, skipped: result.skipped };
  });
}
