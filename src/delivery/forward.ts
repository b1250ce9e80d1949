import type { Env } from "../env.ts";
import { describe } from "../errors.ts";
import type { GateOutcome } from "../gate/policy.ts";
import { log } from "../log.ts";
import { ClaimUnreadable } from "../payloads.ts";
import { type DeadLetter, type DeadLetterReason, deadLetter } from "../queues/dead-letter.ts";
import type { Delivery } from "../queues/delivery.ts";
import type { AttemptRecord, HeldReason, HeldRecord, SupersededRecord } from "../queues/ledger.ts";
import { cut, RECORD_TEXT_LIMITS } from "../queues/limits.ts";
import { destinationOf } from "../rules/destinations.ts";
import type { Destination } from "../rules/schema.ts";
import type { Settings } from "../settings.ts";
import { bodyFor, claimedMemory } from "./body.ts";
import { recordAttempt } from "./metrics.ts";
import { type AttemptResult, classify, nextDelaySeconds, type ReceiverAnswer } from "./outcome.ts";
import { GiveUp, prepareRequest } from "./request.ts";
import type { Sender } from "./senders.ts";
import type { Slots } from "./slots.ts";
import { TransformFailed } from "./transform.ts";

/**
 * One delivery attempt, wherever it is made: by the DELIVERIES consumer for a queue message
 * (src/delivery/consumer.ts), or by a destination's gate for a delivery it held back (src/gate/gate.ts).
 * forward() makes the attempt, tells the gate how it went, settles the delivery through whoever holds it, logs
 * what is worth a line, and returns what the ledger is to know. Both callers go through the same steps; only
 * their holders differ (docs/delivery.md, "Attempts").
 */

/** Whoever holds the delivery being attempted: a queue message, or a gate's held row. */
export interface Holder {
  /** Settled for good (delivered, or its dead letter handed on): ack the message, drop the row. */
  done(): void;
  /**
   * The next attempt, after `delaySeconds`, counting the `attempts` made: requeued, or kept by the holder (a gate
   * whose destination paused meanwhile), which then answers why it is held. Throws when it cannot be requeued.
   */
  retry(delivery: Delivery, attempts: number, delaySeconds: number): Promise<HeldReason | undefined>;
  /** The dead letter, handed on to DEAD_LETTERS. Throws when it cannot be. */
  deadLetter(record: DeadLetter): Promise<void>;
  /**
   * Settling failed (a queue did not take the retry or the dead letter): keep the delivery, to be settled again
   * in `delaySeconds`, with the `attempts` made counted where the holder can count them.
   */
  keep(delivery: Delivery | undefined, attempts: number, delaySeconds: number): void;
  /** How the attempt ended, for the destination's gate (its lease, its circuit breaker). Never throws. */
  report(outcome: GateOutcome): Promise<void>;
}

export interface ForwardContext {
  env: Env;
  settings: Settings;
  destinations: Record<string, Destination>;
  slots: Slots;
  /** Of CLAIMED_MEMORY_BYTES, shared by the deliveries forwarded in one invocation. */
  memory: Slots;
  sender: Sender;
  /** The hash of the rules `destinations` come from (src/rules/store.ts), recorded with a transformed attempt. */
  rulesHash?: string;
}

export interface Forwarding {
  /** Undefined when what the holder holds is not a delivery this relay can read (it becomes a dead letter). */
  delivery: Delivery | undefined;
  /** Names the message or row in log lines. */
  holderId: string;
  /** What the holder held, kept in the dead letter of an unreadable one. */
  raw?: unknown;
  /** When the holder first got it (the dead letter of an unreadable one starts there). */
  since?: Date;
  /** Not before this time (ms): the slot the gate gave it. */
  notBefore?: number;
  /** The delivery as first enqueued, for the ledger, when it has no call text to be rebuilt from (an older relay's). */
  payload?: string;
}

/** A settle that failed is kept this long before it is tried again. */
export const SETTLE_RETRY_SECONDS = 30;

/** Makes one attempt of `item` and settles it; what the ledger is to know of it (an attempt, perhaps a hold). */
export async function forward(
  item: Forwarding,
  ctx: ForwardContext,
  holder: Holder,
): Promise<(AttemptRecord | HeldRecord)[]> {
  const { delivery } = item;
  if (item.notBefore !== undefined) {
    const wait = item.notBefore - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  const attempt = (delivery?.attempts ?? 0) + 1;
  const at = Date.now();
  const verdict = await decide(delivery, attempt, ctx, item.holderId);
  if (delivery !== undefined) await holder.report(gateOutcome(verdict, Date.now()));
  let held: HeldReason | undefined;
  try {
    if (verdict.kind === "delivered") holder.done();
    else if (verdict.kind === "retry") held = await holder.retry(delivery!, attempt, verdict.delaySeconds);
    else {
      await holder.deadLetter(deadLetterOf(delivery, attempt, verdict, item));
      holder.done();
    }
  } catch (error) {
    // The attempt was made and is on record; only handing it on failed. Kept, never lost.
    const delaySeconds = verdict.kind === "retry" ? verdict.delaySeconds : SETTLE_RETRY_SECONDS;
    log("error", "delivery_not_settled", {
      deliveryId: delivery?.deliveryId,
      destination: delivery?.destination,
      attempt,
      holder: item.holderId,
      outcome: verdict.kind === "dead" ? "dead_letter" : verdict.kind,
      error: describe(error),
    });
    holder.keep(delivery, attempt, delaySeconds);
  }
  logVerdict(delivery, attempt, verdict);
  if (delivery === undefined) return [];
  const shapedBy =
    destinationOf(ctx.destinations, delivery.destination)?.transform !== undefined ? ctx.rulesHash : undefined;
  const made = attemptRecord(delivery, attempt, at, verdict, item.payload, shapedBy);
  recordAttempt(ctx.env.METRICS, made);
  const records: (AttemptRecord | HeldRecord)[] = [made];
  if (held !== undefined) records.push(heldRecord(delivery, attempt, Date.now(), held));
  return records;
}

/** What becomes of one delivery. `sent`: a request went out and the receiver's answer (or silence) decided. */
export type Verdict =
  | { kind: "delivered"; sent: true; fields: AttemptFields }
  | { kind: "retry"; sent: boolean; delaySeconds: number; fields: AttemptFields }
  | {
      kind: "dead";
      sent: boolean;
      reason: DeadLetterReason;
      detail: string;
      lastStatus?: number | undefined;
      lastError?: string | undefined;
      fields: AttemptFields;
    };

export interface AttemptFields {
  status?: number | undefined;
  answer?: ReceiverAnswer;
  error?: string | undefined;
  durationMs?: number | undefined;
  delaySeconds?: number;
  reason?: string;
}

const encoder = new TextEncoder();

/** The verdict on one attempt: every failure, expected or not, becomes one; nothing is thrown. */
async function decide(
  delivery: Delivery | undefined,
  attempt: number,
  ctx: ForwardContext,
  holderId: string,
): Promise<Verdict> {
  let maxAttempts = 1;
  /** A failure that is not the receiver's: retried like an attempt, a dead letter `reason` when none are left. */
  const failed = (reason: DeadLetterReason, error: string): Verdict => {
    if (attempt < maxAttempts) {
      const delaySeconds = nextDelaySeconds({ kind: "retry", reason: error }, attempt, ctx.settings.RETRY_SCHEDULE);
      return { kind: "retry", sent: false, delaySeconds, fields: { error, delaySeconds } };
    }
    const detail = `Attempt ${attempt} of ${maxAttempts} failed (${error}); no attempts are left.`;
    return { kind: "dead", sent: false, reason, detail, lastError: error, fields: { error } };
  };
  try {
    if (delivery === undefined) {
      throw new GiveUp("unreadable_message", "The queue message is not a delivery message this relay can read.");
    }
    const destination = destinationOf(ctx.destinations, delivery.destination);
    if (destination === undefined) {
      throw new GiveUp(
        "destination_missing",
        `Destination "${delivery.destination}" is no longer in the rules; add it back and replay.`,
      );
    }
    if (!destination.enabled) {
      throw new GiveUp(
        "destination_disabled",
        `Destination "${delivery.destination}" is disabled; enable it and replay.`,
      );
    }
    maxAttempts = destination.maxAttempts;
    const memory = claimedMemory(delivery);
    const releaseMemory = memory === 0 ? () => {} : await ctx.memory.acquire(memory);
    let result: AttemptResult;
    let started: number;
    try {
      let body: Uint8Array;
      try {
        body = encoder.encode(await bodyFor(delivery, attempt, ctx.env.PAYLOADS, destination));
      } catch (error) {
        if (error instanceof TransformFailed) {
          // The same expression on the same notification fails the same way: a dead letter now, not retries.
          throw new GiveUp("transform_failed", `The destination's transform failed: ${error.message}.`);
        }
        if (!(error instanceof ClaimUnreadable)) throw error;
        return failed("claim_unreadable", `claim unreadable: ${error.message}`);
      }
      const now = Math.floor(Date.now() / 1000);
      const prepared = await prepareRequest(delivery, destination, body, attempt, ctx.env, now);
      const release = await ctx.slots.acquire();
      started = Date.now();
      try {
        result = await ctx.sender.send(prepared, destination.timeoutMs);
      } finally {
        release();
      }
    } finally {
      releaseMemory();
    }
    const durationMs = Date.now() - started;
    const outcome = classify(result);
    const status = result.kind === "response" ? result.status : undefined;
    const error = result.kind === "response" || outcome.kind === "delivered" ? undefined : outcome.reason;
    const answer = result.kind === "response" ? result.answer : undefined;
    const fields = { status, error, durationMs, ...(answer !== undefined && { answer }) };
    if (outcome.kind === "delivered") return { kind: "delivered", sent: true, fields };
    if (outcome.kind === "retry" && attempt < destination.maxAttempts) {
      const delaySeconds = nextDelaySeconds(outcome, attempt, ctx.settings.RETRY_SCHEDULE);
      return { kind: "retry", sent: true, delaySeconds, fields: { ...fields, delaySeconds } };
    }
    const failure =
      outcome.kind === "permanent"
        ? {
            reason: "permanent_failure" as const,
            detail: `The receiver answered ${outcome.reason}, which is not retried.`,
          }
        : {
            reason: "attempts_exhausted" as const,
            detail: `Attempt ${attempt} of ${destination.maxAttempts} failed (${outcome.reason}); no attempts are left.`,
          };
    return {
      kind: "dead",
      sent: true,
      ...failure,
      lastStatus: status,
      lastError: error,
      fields: { ...fields, reason: failure.reason },
    };
  } catch (error) {
    if (error instanceof GiveUp) {
      return { kind: "dead", sent: false, reason: error.reason, detail: error.message, fields: {} };
    }
    // A bug, not the receiver's doing: counted as a failed attempt, so it ends as a dead letter, never a loop.
    const reason = `relay error: ${describe(error)}`;
    log("error", "delivery_failed_unexpectedly", { holder: holderId, error: reason });
    return failed("attempts_exhausted", reason);
  }
}

/** How an attempt counts for the circuit: only a request that went out and failed is a failure. */
export function gateOutcome(verdict: Verdict, at: number): GateOutcome {
  if (verdict.kind === "delivered") return { kind: "delivered", at, final: true };
  const next = verdict.kind === "retry" ? { final: false, retryAt: at + verdict.delaySeconds * 1000 } : { final: true };
  if (!verdict.sent) return { kind: "neutral", at, ...next };
  return {
    kind: "failed",
    at,
    status: verdict.fields.status,
    error: verdict.fields.error ?? verdict.fields.reason,
    ...next,
  };
}

/** A first-time success is only in the ledger; everything else about an attempt is worth a line. */
function logVerdict(delivery: Delivery | undefined, attempt: number, verdict: Verdict): void {
  const ids = { deliveryId: delivery?.deliveryId, destination: delivery?.destination, attempt };
  // The receiver's answer stays out of the logs: its body is the receiver's, and logs hold no bodies.
  const { answer: _, ...logged } = verdict.fields;
  const fields = verdict.kind === "dead" ? { ...logged, reason: verdict.reason } : logged;
  const outcome = verdict.kind === "dead" ? "dead_letter" : verdict.kind;
  if (verdict.kind !== "delivered") log("warn", "delivery_attempt", { ...ids, ...fields, outcome });
  else if (attempt > 1) log("info", "delivery_recovered", { ...ids, ...fields });
}

/** The attempt, for the ledger. */
function attemptRecord(
  delivery: Delivery,
  attempt: number,
  at: number,
  verdict: Verdict,
  payload: string | undefined,
  rules: string | undefined,
): AttemptRecord {
  const { status, error, durationMs, answer } = verdict.fields;
  return {
    kind: "attempt",
    ...deliveryFields(delivery),
    attempt,
    at,
    ...(status !== undefined && { status }),
    ...(error !== undefined && { error: cut(error, RECORD_TEXT_LIMITS.lastError) }),
    ...(durationMs !== undefined && { durationMs }),
    outcome: verdict.kind === "dead" ? "dead_letter" : verdict.kind,
    ...(payload !== undefined && { payload }),
    ...(rules !== undefined && { rules }),
    ...(answer !== undefined && { answer }),
    ...(verdict.kind === "dead" && {
      dead: { reason: verdict.reason, detail: cut(verdict.detail, RECORD_TEXT_LIMITS.detail) },
    }),
  };
}

/** A delivery held back by its destination's gate after `attempts` attempts, for the ledger. */
export function heldRecord(
  delivery: Delivery,
  attempts: number,
  at: number,
  reason: HeldReason,
  waitsFor?: string,
): HeldRecord {
  return {
    kind: "held",
    ...deliveryFields(delivery),
    attempts,
    at,
    reason,
    ...(waitsFor !== undefined && { waitsFor }),
  };
}

/** A coalesced delivery that is not sent: `by` carries the newer state (docs/rules.md, "Shaping deliveries"). */
export function supersededBy(delivery: Delivery, by: string, at: number): SupersededRecord {
  return { kind: "superseded", ...deliveryFields(delivery), attempts: delivery.attempts ?? 0, at, by };
}

function deliveryFields(delivery: Delivery) {
  return {
    deliveryId: delivery.deliveryId,
    destination: delivery.destination,
    callId: delivery.callId,
    routes: delivery.routes,
    indices: delivery.indices,
    receivedAt: delivery.receivedAt,
    run: delivery.run ?? 0,
  };
}

/** The dead-letter record of a delivery that stops here (`raw`: what was held when it was unreadable). */
function deadLetterOf(
  delivery: Delivery | undefined,
  attempts: number,
  failure: Extract<Verdict, { kind: "dead" }>,
  item: Forwarding,
): DeadLetter {
  return deadLetter({
    deliveryId: delivery?.deliveryId ?? `unreadable.${item.holderId}`,
    destination: delivery?.destination ?? "(unknown)",
    reason: failure.reason,
    detail: failure.detail,
    lastStatus: failure.lastStatus,
    lastError: failure.lastError,
    attempts: delivery === undefined ? 0 : attempts,
    firstAttemptAt: delivery === undefined ? (item.since ?? new Date()) : new Date(delivery.receivedAt),
    at: new Date(),
    source: "relay",
    message: delivery,
    raw: delivery === undefined ? item.raw : undefined,
  });
}
