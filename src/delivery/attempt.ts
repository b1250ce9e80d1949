import type { Env } from "../env.ts";
import { describe } from "../errors.ts";
import { log } from "../log.ts";
import {
  type AttemptRecord,
  cut,
  type DeadLetter,
  type DeadLetterReason,
  type DeliveryMessage,
  deadLetter,
  encodeMessage,
  RECORD_TEXT_LIMITS,
} from "../queues.ts";
import type { Destination } from "../rules/schema.ts";
import type { Settings } from "../settings.ts";
import { type AttemptResult, classify, nextDelaySeconds } from "./outcome.ts";
import { GiveUp, type PreparedRequest, prepareRequest, redact } from "./request.ts";

/**
 * One delivery attempt, wherever it is made: by the DELIVERIES consumer (src/delivery/consumer.ts) or by a
 * destination's gate sending what it held back (src/gate/gate.ts). Deciding is separate from settling, so
 * that each caller settles in its own way (a queue message, a held row).
 */

export { MAX_CONNECTIONS } from "./planner.ts";

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
  error?: string | undefined;
  durationMs?: number | undefined;
  delaySeconds?: number;
  reason?: string;
}

/** The verdict on one delivery: every failure, expected or not, becomes one; nothing is thrown. */
export async function decide(
  delivery: DeliveryMessage | undefined,
  attempt: number,
  env: Env,
  settings: Settings,
  destinations: Record<string, Destination>,
  slots: Slots,
  messageId?: string,
): Promise<Verdict> {
  let maxAttempts = 1;
  try {
    if (delivery === undefined) {
      throw new GiveUp("unreadable_message", "The queue message is not a delivery message this relay can read.");
    }
    const destination = destinationOf(destinations, delivery.destination);
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
    const prepared = await prepareRequest(delivery, destination, attempt, env, Math.floor(Date.now() / 1000));
    const release = await slots.acquire();
    const started = Date.now();
    let result: AttemptResult;
    try {
      result = await send(prepared, destination.timeoutMs);
    } finally {
      release();
    }
    const durationMs = Date.now() - started;
    const outcome = classify(result);
    const status = result.kind === "response" ? result.status : undefined;
    const error = result.kind === "response" || outcome.kind === "delivered" ? undefined : outcome.reason;
    const fields = { status, error, durationMs };
    if (outcome.kind === "delivered") return { kind: "delivered", sent: true, fields };
    if (outcome.kind === "retry" && attempt < destination.maxAttempts) {
      const delaySeconds = nextDelaySeconds(outcome, attempt, settings.RETRY_SCHEDULE);
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
    log("error", "delivery_failed_unexpectedly", { messageId, error: reason });
    if (attempt < maxAttempts) {
      const delaySeconds = nextDelaySeconds({ kind: "retry", reason }, attempt, settings.RETRY_SCHEDULE);
      return { kind: "retry", sent: false, delaySeconds, fields: { error: reason, delaySeconds } };
    }
    const detail = `Attempt ${attempt} of ${maxAttempts} failed (${reason}); no attempts are left.`;
    return {
      kind: "dead",
      sent: false,
      reason: "attempts_exhausted",
      detail,
      lastError: reason,
      fields: { error: reason },
    };
  }
}

/** A destination of the rules by id (own keys only). */
export function destinationOf(destinations: Record<string, Destination>, id: string): Destination | undefined {
  return Object.hasOwn(destinations, id) ? destinations[id] : undefined;
}

async function send({ url, init, secrets }: PreparedRequest, timeoutMs: number): Promise<AttemptResult> {
  try {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    // The body is not needed; release the connection.
    await response.body?.cancel().catch(() => {});
    return { kind: "response", status: response.status, retryAfter: response.headers.get("retry-after") };
  } catch (error) {
    if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) {
      return { kind: "timeout", timeoutMs };
    }
    // Runtime errors may quote the URL, which can itself be a secret.
    return { kind: "network", error: redact(describe(error), secrets) };
  }
}

/** A first-time success is only in the ledger; everything else about an attempt is worth a line. */
export function logVerdict(delivery: DeliveryMessage | undefined, attempt: number, verdict: Verdict): void {
  const ids = { deliveryId: delivery?.deliveryId, destination: delivery?.destination, attempt };
  const fields = verdict.kind === "dead" ? { ...verdict.fields, reason: verdict.reason } : verdict.fields;
  const outcome = verdict.kind === "dead" ? "dead_letter" : verdict.kind;
  if (verdict.kind !== "delivered") log("warn", "delivery_attempt", { ...ids, ...fields, outcome });
  else if (attempt > 1) log("info", "delivery_recovered", { ...ids, ...fields });
}

/** The attempt for the ledger. */
export function attemptRecord(
  delivery: DeliveryMessage,
  attempt: number,
  at: number,
  verdict: Verdict,
  payload?: string,
): AttemptRecord {
  const { status, error, durationMs } = verdict.fields;
  return {
    kind: "attempt",
    deliveryId: delivery.deliveryId,
    destination: delivery.destination,
    callId: delivery.callId,
    routes: delivery.routes,
    indices: delivery.indices,
    receivedAt: delivery.receivedAt,
    run: delivery.run ?? 0,
    attempt,
    at,
    ...(status !== undefined && { status }),
    ...(error !== undefined && { error: cut(error, RECORD_TEXT_LIMITS.lastError) }),
    ...(durationMs !== undefined && { durationMs }),
    outcome: verdict.kind === "dead" ? "dead_letter" : verdict.kind,
    ...(payload !== undefined && { payload }),
    ...(verdict.kind === "dead" && {
      dead: { reason: verdict.reason, detail: cut(verdict.detail, RECORD_TEXT_LIMITS.detail) },
    }),
  };
}

/** The dead-letter record of a delivery that stops here (`raw`: what was on the queue when unreadable). */
export function deadLetterOf(
  delivery: DeliveryMessage | undefined,
  attempts: number,
  failure: Extract<Verdict, { kind: "dead" }>,
  unreadable: { id: string; timestamp: Date; raw: unknown } | undefined,
): DeadLetter {
  return deadLetter({
    deliveryId: delivery?.deliveryId ?? `unreadable.${unreadable?.id}`,
    destination: delivery?.destination ?? "(unknown)",
    reason: failure.reason,
    detail: failure.detail,
    lastStatus: failure.lastStatus,
    lastError: failure.lastError,
    attempts: delivery === undefined ? 0 : attempts,
    firstAttemptAt: delivery === undefined ? (unreadable?.timestamp ?? new Date()) : new Date(delivery.receivedAt),
    at: new Date(),
    source: "relay",
    message: delivery === undefined ? undefined : withoutRecord(delivery),
    raw: delivery === undefined ? unreadable?.raw : undefined,
  });
}

/** The message of the next attempt: it counts the attempts made and no longer carries the call's record. */
export function nextAttempt(delivery: DeliveryMessage, attempts: number): string {
  const { record: _, ...next } = delivery;
  return encodeMessage({ ...next, attempts });
}

/** A delivery message without the call's record it may carry (which the ledger has by then). */
export function withoutRecord(delivery: DeliveryMessage): DeliveryMessage {
  const { record: _, ...rest } = delivery;
  return rest;
}

/** At most `size` holders at once; the others wait in arrival order. */
export class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(size: number) {
    this.free = size;
  }
  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else this.free++;
    };
  }
}
