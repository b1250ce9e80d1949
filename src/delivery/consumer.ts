import type { Env } from "../env.ts";
import { describe } from "../errors.ts";
import { cachedView, gateOf, mustAdmit, remember, report } from "../gate/client.ts";
import { gateOutcome, heldFields } from "../gate/gate.ts";
import { isLimited, LEASE_MARGIN_MS } from "../gate/policy.ts";
import { LEDGER_TRIES } from "../ledger/consumer.ts";
import { type HandedRecord, handToLedger } from "../ledger/handoff.ts";
import { log } from "../log.ts";
import {
  type CallRecord,
  callRecordSchema,
  type DeliveryMessage,
  decodeMessage,
  encodeMessage,
  type HeldReason,
  readDeliveryMessage,
} from "../queues.ts";
import type { Destination } from "../rules/schema.ts";
import { loadRules } from "../rules/store.ts";
import { consumerSettings, type Settings } from "../settings.ts";
import {
  attemptRecord,
  deadLetterOf,
  decide,
  destinationOf,
  logVerdict,
  MAX_CONNECTIONS,
  nextAttempt,
  Slots,
  type Verdict,
  withoutRecord,
} from "./attempt.ts";

export { MAX_CONNECTIONS } from "./attempt.ts";

/**
 * A delivery whose limited destination's gate cannot be reached comes back after 5 s, doubling to 5 min (not an
 * attempt, but each return counts against the queue's max_retries: 100 of them last about 8 hours).
 */
const GATE_RETRY_SECONDS = 5;
const GATE_RETRY_MAX_SECONDS = 300;

/**
 * The DELIVERIES consumer. Delivery messages are delivered, retried or dead-lettered each on its own, the
 * messages of a batch concurrently so that a slow receiver holds up nobody else. A destination's gate
 * (src/gate/) decides first whether a delivery may go now: always for a destination with limits, and for one
 * without only while it is paused, probing or holding deliveries. What the batch means for the ledger (the call
 * records it carried, every attempt and hold) then goes to the ledger queue in one message, whose consumer
 * writes large batches in one `db.batch`: the ledger never fails or delays a delivery (docs/ledger.md).
 */
export async function consumeDeliveries(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  // A bad var falls back to its default here (logged): deliveries keep moving during a bad deploy.
  const settings = consumerSettings(env);
  const deliveries: { message: Message<unknown>; delivery: DeliveryMessage | undefined }[] = [];
  const calls: { message: Message<unknown>; record: CallRecord }[] = [];
  for (const message of batch.messages) {
    const body = decodeMessage(message.body);
    const call =
      typeof body === "object" && body !== null && (body as { kind?: unknown }).kind === "call"
        ? callRecordSchema.safeParse(body)
        : undefined;
    if (call?.success) calls.push({ message, record: call.data });
    else deliveries.push({ message, delivery: readDeliveryMessage(body) });
  }

  const records: HandedRecord[] = calls.map((c) => c.record);
  if (deliveries.length > 0) {
    let destinations: Record<string, Destination> | undefined;
    try {
      destinations = (await loadRules(env.RULES, settings.RULES_CACHE_SECONDS)).rules.destinations;
    } catch (error) {
      // Without the rules no destination can be resolved: Queues hands these back in 30 s (not an attempt).
      log("error", "delivery_batch_deferred", { messages: deliveries.length, error: describe(error) });
      for (const { message } of deliveries) message.retry({ delaySeconds: 30 });
    }
    if (destinations !== undefined) {
      const plans = await admitAll(env, deliveries, destinations);
      const slots = new Slots(MAX_CONNECTIONS);
      const made = await Promise.all(
        deliveries.map(({ message, delivery }, i) =>
          handle(message, delivery, plans[i]!, env, settings, destinations, slots),
        ),
      );
      for (const [i, record] of made.entries()) {
        const call = deliveries[i]!.delivery?.record;
        if (call !== undefined) records.push(call);
        if (record !== undefined) records.push(record);
      }
    }
  }
  if (await handToLedger(env, records)) for (const { message } of calls) message.ack();
  else {
    // Neither the ledger queue nor the ledger took them (logged with their ids): a call record of its own comes
    // back in 30 s, LEDGER_TRIES times at most, then it is given up like any ledger write (never a dead letter).
    for (const { message, record } of calls) {
      if (message.attempts >= LEDGER_TRIES) {
        log("error", "ledger_write_given_up", { calls: [record.id], tries: message.attempts });
        message.ack();
      } else message.retry({ delaySeconds: 30 });
    }
  }
}

/** What the gate said of one delivery. */
type Plan =
  /** Not a delivery to a destination in the rules: decide() settles it (a dead letter). */
  | { kind: "none" }
  /** A destination without limits that is active: goes now; `failures` tells whether a success must be reported. */
  | { kind: "direct"; failures: number }
  | { kind: "go"; lease: string; at: number }
  | { kind: "held"; reason: HeldReason }
  /** A destination with limits whose gate cannot be reached: the message comes back later. */
  | { kind: "defer" };

/** Asks each destination's gate about the batch's deliveries to it, in one call per destination. */
async function admitAll(
  env: Env,
  deliveries: readonly { delivery: DeliveryMessage | undefined }[],
  destinations: Record<string, Destination>,
): Promise<Plan[]> {
  const plans: Plan[] = deliveries.map(() => ({ kind: "none" }));
  const groups = new Map<string, number[]>();
  deliveries.forEach(({ delivery }, i) => {
    const destination = delivery && destinationOf(destinations, delivery.destination);
    if (destination === undefined || !destination.enabled) return;
    const group = groups.get(delivery!.destination);
    if (group === undefined) groups.set(delivery!.destination, [i]);
    else group.push(i);
  });
  await Promise.all(
    [...groups].map(async ([name, indices]) => {
      const destination = destinations[name]!;
      const limited = isLimited(destination);
      const view = limited ? undefined : await cachedView(env, name);
      if (!limited && !mustAdmit(view)) {
        for (const i of indices) plans[i] = { kind: "direct", failures: view?.failures ?? 0 };
        return;
      }
      try {
        const items = indices.map((i) => {
          const delivery = deliveries[i]!.delivery!;
          return {
            deliveryId: delivery.deliveryId,
            run: delivery.run ?? 0,
            attempts: delivery.attempts ?? 0,
            text: encodeMessage(withoutRecord(delivery)),
          };
        });
        const answer = await gateOf(env, name).admit(name, items, destination.timeoutMs + LEASE_MARGIN_MS);
        remember(name, answer.view);
        answer.results.forEach((result, k) => {
          plans[indices[k]!] = "go" in result ? { kind: "go", ...result.go } : { kind: "held", reason: result.held };
        });
      } catch (error) {
        // Limits are a promise to the receiver: rather later than over them. Without limits, rather now.
        log("warn", "gate_unavailable", { destination: name, deliveries: indices.length, error: describe(error) });
        for (const i of indices) plans[i] = limited ? { kind: "defer" } : { kind: "direct", failures: 0 };
      }
    }),
  );
  return plans;
}

/** Settles one message as its plan says and returns what the ledger is to know of it. */
async function handle(
  message: Message<unknown>,
  delivery: DeliveryMessage | undefined,
  plan: Plan,
  env: Env,
  settings: Settings,
  destinations: Record<string, Destination>,
  slots: Slots,
): Promise<HandedRecord | undefined> {
  if (plan.kind === "held") {
    // The gate keeps it now, in order; it sends it itself when there is room. Waiting is not an attempt.
    message.ack();
    const d = delivery!;
    return { ...heldFields(d), attempts: d.attempts ?? 0, at: Date.now(), reason: plan.reason };
  }
  if (plan.kind === "defer") {
    const delaySeconds = Math.min(GATE_RETRY_SECONDS * 2 ** Math.min(message.attempts - 1, 10), GATE_RETRY_MAX_SECONDS);
    message.retry({ delaySeconds });
    return undefined;
  }
  if (plan.kind === "go") {
    const wait = plan.at - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  const attempt = (delivery?.attempts ?? 0) + 1;
  const at = Date.now();
  const verdict = await decide(delivery, attempt, env, settings, destinations, slots, message.id);
  if (delivery !== undefined && plan.kind !== "none") {
    const outcome = gateOutcome(verdict, Date.now());
    if (plan.kind === "go") await report(env, delivery.destination, plan.lease, outcome);
    else if (outcome.kind === "failed" || (outcome.kind === "delivered" && plan.failures > 0)) {
      await report(env, delivery.destination, undefined, outcome);
    }
  }
  try {
    if (verdict.kind === "delivered") message.ack();
    else if (verdict.kind === "retry") await retry(env, message, delivery!, attempt, verdict.delaySeconds);
    else await giveUp(env, message, delivery, attempt, verdict);
  } catch (error) {
    // Only a failure to reach DEAD_LETTERS gets here (decide() never throws): keep the message rather than lose it.
    log("error", "dead_letter_send_failed", {
      deliveryId: delivery?.deliveryId,
      destination: delivery?.destination,
      attempt,
      messageId: message.id,
      error: describe(error),
    });
    message.retry({ delaySeconds: 30 });
    return undefined;
  }
  logVerdict(delivery, attempt, verdict);
  if (delivery === undefined) return undefined;
  return attemptRecord(delivery, attempt, at, verdict, legacyPayload(message, delivery));
}

/**
 * The delivery message for the ledger to keep, only when it holds no text of the call to rebuild it from: a
 * message an older relay enqueued (an object, not text).
 */
function legacyPayload(message: Message<unknown>, delivery: DeliveryMessage): string | undefined {
  if (typeof message.body === "string") return undefined;
  const { attempts: _, ...first } = withoutRecord(delivery);
  return encodeMessage(first);
}

/**
 * The next attempt goes on the queue as a new message that counts the attempts made, so that a message Queues
 * hands over again (a deferred batch, a crash) is never counted as another attempt. Should that send fail,
 * Queues' own retry takes over (the same attempt is then made again).
 */
async function retry(
  env: Env,
  message: Message<unknown>,
  delivery: DeliveryMessage,
  attempt: number,
  delaySeconds: number,
): Promise<void> {
  try {
    // The call's record went to the ledger with this attempt; the next one does not carry it again.
    await env.DELIVERIES.send(nextAttempt(delivery, attempt), { contentType: "text", delaySeconds });
    message.ack();
  } catch (error) {
    log("warn", "retry_send_failed", { deliveryId: delivery.deliveryId, attempt, error: describe(error) });
    message.retry({ delaySeconds });
  }
}

/** The one way a delivery ends as a dead letter: the record goes to DEAD_LETTERS, then the message is acked. */
async function giveUp(
  env: Env,
  message: Message<unknown>,
  delivery: DeliveryMessage | undefined,
  attempts: number,
  failure: Extract<Verdict, { kind: "dead" }>,
): Promise<void> {
  const record = deadLetterOf(delivery, attempts, failure, {
    id: message.id,
    timestamp: message.timestamp,
    raw: message.body,
  });
  await env.DEAD_LETTERS.send(encodeMessage(record), { contentType: "text" });
  message.ack();
}
