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

/**
 * Sends a delivery again, whatever its status (`delivery.resend`): same delivery id, a new run with attempts
 * afresh (POST /admin/deliveries/:id/replay, and the console's "Resend").
 */
export async function resendDelivery(op: OpContext, id: string): Promise<ResendResult> {
  const delivery = await foundDelivery(op.env, id);
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
    detail: { destination: delivery.destination, status: delivery.status },
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
