import type { Env } from "../env.ts";
import { describe } from "../errors.ts";
import { cachedView, gateOf, mustAdmit, remember, report } from "../gate/client.ts";
import { isLimited, LEASE_MARGIN_MS } from "../gate/policy.ts";
import { ownerOf } from "../gate/shaping.ts";
import { acceptedAt } from "../ledger/calls.ts";
import { handToLedger } from "../ledger/handoff.ts";
import { log } from "../log.ts";
import type { CallRecord } from "../queues/call.ts";
import { decodeMessage, encodeMessage } from "../queues/codec.ts";
import { deadLetter } from "../queues/dead-letter.ts";
import { type Delivery, firstEnqueued, readDeliveriesMessage } from "../queues/delivery.ts";
import type { HeldReason, LedgerRecord } from "../queues/ledger.ts";
import { requeueDelivery, sendDeadLetter } from "../queues/send.ts";
import { currentRules, destinationOf } from "../rules/destinations.ts";
import type { Destination } from "../rules/schema.ts";
import { consumerSettings } from "../settings.ts";
import {
  type ForwardContext,
  forward,
  type Holder,
  heldRecord,
  SETTLE_RETRY_SECONDS,
  supersededBy,
} from "./forward.ts";
import { httpSender, type Sender } from "./senders.ts";
import { CLAIMED_MEMORY_BYTES, MAX_CONNECTIONS, Slots } from "./slots.ts";

/**
 * A delivery whose limited destination's gate cannot be reached comes back after 5 s, doubling to 5 min (not an
 * attempt, but each return counts against the queue's max_retries: 100 of them last about 8 hours).
 */
const GATE_RETRY_SECONDS = 5;
const GATE_RETRY_MAX_SECONDS = 300;

/** A call record of its own whose ledger handoff failed comes back after this long. */
const CALL_RECORD_RETRY_SECONDS = 30;

/**
 * The DELIVERIES consumer. Each delivery is forwarded (src/delivery/forward.ts) on its own, the messages of a batch
 * concurrently so that a slow receiver holds up nobody else. A destination's gate (src/gate/) decides first
 * whether a delivery may go now: always for a destination with limits, and for one without only while it is
 * paused, probing or holding deliveries. What the batch means for the ledger (the call records it carried, every
 * attempt and hold) then goes to the ledger queue in one message, whose consumer writes large batches in one
 * `db.batch`: the ledger never fails or delays a delivery (docs/ledger.md).
 */
export async function consumeDeliveries(
  batch: MessageBatch<unknown>,
  env: Env,
  sender: Sender = httpSender,
): Promise<void> {
  // A bad var falls back to its default here (logged): deliveries keep moving during a bad deploy.
  const settings = consumerSettings(env);
  const items: { message: Message<unknown>; delivery: Delivery | undefined }[] = [];
  /** Call records that came in messages of their own: acked once the ledger has them. */
  const calls: { message: Message<unknown>; record: CallRecord }[] = [];
  const records: LedgerRecord[] = [];
  for (const message of batch.messages) {
    const read = readDeliveriesMessage(decodeMessage(message.body));
    if (read.delivery === undefined && read.call !== undefined) calls.push({ message, record: read.call });
    else {
      if (read.call !== undefined) records.push(read.call);
      items.push({ message, delivery: read.delivery });
    }
  }
  records.unshift(...calls.map((c) => c.record));
  await skipReplays(env, items, records);

  if (items.length > 0) {
    let destinations: Record<string, Destination> | undefined;
    let rulesHash: string | undefined;
    try {
      ({ destinations, hash: rulesHash } = await currentRules(env, settings));
    } catch (error) {
      // Without the rules no destination can be resolved: Queues hands these back in 30 s (not an attempt).
      log("error", "delivery_batch_deferred", { messages: items.length, error: describe(error) });
      for (const { message } of items) message.retry({ delaySeconds: 30 });
    }
    if (destinations !== undefined) {
      const plans = await admitAll(env, items, destinations);
      const ctx: ForwardContext = {
        env,
        settings,
        destinations,
        slots: new Slots(MAX_CONNECTIONS),
        memory: new Slots(CLAIMED_MEMORY_BYTES),
        sender,
        ...(rulesHash !== undefined && { rulesHash }),
      };
      const made = await Promise.all(items.map((item, i) => handle(item.message, item.delivery, plans[i]!, ctx)));
      records.push(...made.flat());
    }
  }
  if (await handToLedger(env, records)) for (const { message } of calls) message.ack();
  else {
    // Neither the ledger queue nor the ledger took them (logged with their ids): a call record of its own comes
    // back later, for the ledger's sake only.
    for (const { message } of calls) message.retry({ delaySeconds: CALL_RECORD_RETRY_SECONDS });
  }
}

/**
 * A call Id already on record from another acceptance is never delivered again as new (docs/delivery.md,
 * "Dedupe"): the door reads no storage for a first attempt, so a captured call sent again with the same bytes is
 * accepted there, and recognised here, with one ledger read per batch. Only a run's first attempt is checked
 * (later attempts and replays come from deliveries already on their way). Its deliveries are acked unattempted
 * and its record counts as a duplicate. When the ledger cannot be read the deliveries go (receivers dedupe on
 * the delivery id).
 */
async function skipReplays(
  env: Env,
  items: { message: Message<unknown>; delivery: Delivery | undefined }[],
  records: LedgerRecord[],
): Promise<void> {
  const first = items.filter(({ delivery }) => delivery !== undefined && !delivery.run && !delivery.attempts);
  const accepted = records.filter((r): r is CallRecord => r.kind === "call" && r.outcome === "accepted");
  if (first.length === 0 && accepted.length === 0) return;
  let onRecord: Map<string, number>;
  try {
    onRecord = await acceptedAt(env.LEDGER, [...first.map((i) => i.delivery!.callId), ...accepted.map((r) => r.id)]);
  } catch (error) {
    log("warn", "dedupe_read_failed", { calls: accepted.length, deliveries: first.length, error: describe(error) });
    return;
  }
  const replayed = (id: string, at: number) => onRecord.has(id) && onRecord.get(id) !== at;
  const skipped = first.filter(({ delivery }) => replayed(delivery!.callId, delivery!.receivedAt));
  for (const item of skipped) {
    item.message.ack();
    items.splice(items.indexOf(item), 1);
  }
  for (const [i, record] of records.entries()) {
    if (record.kind === "call" && record.outcome === "accepted" && replayed(record.id, record.at)) {
      records[i] = { kind: "call", v: 2, id: record.id, at: record.at, attempt: record.attempt, outcome: "duplicate" };
    }
  }
  if (skipped.length > 0) {
    log("warn", "call_replayed", {
      calls: [...new Set(skipped.map((i) => i.delivery!.callId))],
      deliveries: skipped.map((i) => i.delivery!.deliveryId),
    });
  }
}

/** What the gate said of one delivery. */
type Plan =
  /** Not a delivery to a destination in the rules: forward() settles it (a dead letter). */
  | { kind: "none" }
  /** A destination without limits that is active: goes now; `failures` tells whether a success must be reported. */
  | { kind: "direct"; failures: number }
  | { kind: "go"; lease: string; at: number; owner?: string }
  | { kind: "held"; reason: HeldReason; waitsFor?: string }
  /** A coalesced notification that a newer one replaces (docs/rules.md, "Shaping deliveries"). */
  | { kind: "superseded"; by: string }
  /** The gate holds its cap already: a dead letter, never a silent drop. */
  | { kind: "full"; held: number; cap: number }
  /** A destination with limits whose gate cannot be reached: the message comes back later. */
  | { kind: "defer" };

/** Asks each destination's gate about the batch's deliveries to it, in one call per destination. */
async function admitAll(
  env: Env,
  items: readonly { delivery: Delivery | undefined }[],
  destinations: Record<string, Destination>,
): Promise<Plan[]> {
  const plans: Plan[] = items.map(() => ({ kind: "none" }));
  const groups = new Map<string, number[]>();
  items.forEach(({ delivery }, i) => {
    const destination = delivery && destinationOf(destinations, delivery.destination);
    if (destination === undefined || !destination.enabled) return;
    const group = groups.get(delivery!.destination);
    if (group === undefined) groups.set(delivery!.destination, [i]);
    else group.push(i);
  });
  await Promise.all(
    [...groups].map(async ([name, indices]) => {
      const destination = destinations[name]!;
      const limited = isLimited(destination) || indices.some((i) => items[i]!.delivery!.coalesce !== undefined);
      const view = limited ? undefined : await cachedView(env, name);
      if (!limited && !mustAdmit(view)) {
        for (const i of indices) plans[i] = { kind: "direct", failures: view?.failures ?? 0 };
        return;
      }
      try {
        const admitted = indices.map((i) => {
          const delivery = items[i]!.delivery!;
          return {
            deliveryId: delivery.deliveryId,
            run: delivery.run ?? 0,
            attempts: delivery.attempts ?? 0,
            text: encodeMessage(delivery),
            receivedAt: delivery.receivedAt,
            index: delivery.indices[0] ?? 0,
            ...(delivery.keys !== undefined && destination.order === "key" && { keys: delivery.keys }),
            ...(delivery.coalesce !== undefined && { coalesce: delivery.coalesce }),
          };
        });
        const answer = await gateOf(env, name).admit(
          name,
          admitted,
          destination.timeoutMs + LEASE_MARGIN_MS,
          consumerSettings(env).MAX_HELD_PER_DESTINATION,
        );
        remember(name, answer.view);
        answer.results.forEach((result, k) => {
          const item = admitted[k]!;
          plans[indices[k]!] =
            "go" in result
              ? { kind: "go", ...result.go, ...(item.keys !== undefined && { owner: ownerOf(item) }) }
              : "held" in result
                ? {
                    kind: "held",
                    reason: result.held,
                    ...(result.waitsFor !== undefined && { waitsFor: result.waitsFor }),
                  }
                : "superseded" in result
                  ? { kind: "superseded", by: result.superseded }
                  : { kind: "full", ...result.full };
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
  delivery: Delivery | undefined,
  plan: Plan,
  ctx: ForwardContext,
): Promise<LedgerRecord[]> {
  if (plan.kind === "held") {
    // The gate keeps it now, in order; it sends it itself when there is room. Waiting is not an attempt.
    message.ack();
    return [heldRecord(delivery!, delivery!.attempts ?? 0, Date.now(), plan.reason, plan.waitsFor)];
  }
  if (plan.kind === "superseded") {
    message.ack();
    return [supersededBy(delivery!, plan.by, Date.now())];
  }
  if (plan.kind === "full") {
    const d = delivery!;
    const record = deadLetter({
      deliveryId: d.deliveryId,
      destination: d.destination,
      reason: "held_limit",
      detail: `The gate of "${d.destination}" holds ${plan.held} deliveries, its cap (MAX_HELD_PER_DESTINATION ${plan.cap}); this one was not held. Resume or fix the destination, then replay.`,
      attempts: d.attempts ?? 0,
      firstAttemptAt: new Date(d.receivedAt),
      at: new Date(),
      source: "relay",
      message: d,
    });
    try {
      await sendDeadLetter(ctx.env.DEAD_LETTERS, record);
      message.ack();
    } catch (error) {
      log("error", "delivery_not_settled", { deliveryId: d.deliveryId, holder: message.id, error: describe(error) });
      message.retry({ delaySeconds: SETTLE_RETRY_SECONDS });
    }
    return [];
  }
  if (plan.kind === "defer") {
    const delaySeconds = Math.min(GATE_RETRY_SECONDS * 2 ** Math.min(message.attempts - 1, 10), GATE_RETRY_MAX_SECONDS);
    message.retry({ delaySeconds });
    return [];
  }
  return forward(
    {
      delivery,
      holderId: message.id,
      raw: message.body,
      since: message.timestamp,
      ...(plan.kind === "go" && { notBefore: plan.at }),
      ...(delivery !== undefined &&
        typeof message.body !== "string" && { payload: encodeMessage(firstEnqueued(delivery)) }),
    },
    ctx,
    messageHolder(message, ctx.env, delivery?.destination, plan),
  );
}

/**
 * A queue message as the holder of its delivery. The next attempt goes on the queue as a new message that counts
 * the attempts made, so that a message Queues hands over again (a deferred batch, a crash) is never counted as
 * another attempt; should that send fail, Queues' own retry of this message takes over (the same attempt is then
 * made again).
 */
function messageHolder(message: Message<unknown>, env: Env, destination: string | undefined, plan: Plan): Holder {
  return {
    done: () => message.ack(),
    async retry(delivery, attempts, delaySeconds) {
      await requeueDelivery(env.DELIVERIES, delivery, attempts, delaySeconds);
      message.ack();
      return undefined;
    },
    deadLetter: (record) => sendDeadLetter(env.DEAD_LETTERS, record),
    keep: (_delivery, _attempts, delaySeconds) => message.retry({ delaySeconds }),
    async report(outcome) {
      if (destination === undefined || plan.kind === "none") return;
      if (plan.kind === "go") await report(env, destination, plan.lease, outcome, plan.owner);
      else if (
        outcome.kind === "failed" ||
        (outcome.kind === "delivered" && plan.kind === "direct" && plan.failures > 0)
      ) {
        await report(env, destination, undefined, outcome);
      }
    },
  };
}
