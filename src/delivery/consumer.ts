import type { Env } from "../env.ts";
import { describe } from "../errors.ts";
import { log } from "../log.ts";
import {
  type DeadLetterReason,
  type DeliveryMessage,
  deadLetter,
  decodeMessage,
  encodeMessage,
  readDeliveryMessage,
} from "../queues.ts";
import type { Destination } from "../rules/schema.ts";
import { loadRules } from "../rules/store.ts";
import { consumerSettings, type Settings } from "../settings.ts";
import { type AttemptResult, classify, nextDelaySeconds } from "./outcome.ts";
import { GiveUp, type PreparedRequest, prepareRequest, redact } from "./request.ts";

/**
 * Workers keep at most 6 connections open per invocation; a 7th fetch waits for a free one. A request's
 * timeout starts only once it holds one of these slots, so a slow receiver cannot make others time out.
 */
export const MAX_CONNECTIONS = 6;

/**
 * The DELIVERIES consumer: each message is delivered, retried or dead-lettered on its own, and the messages
 * of a batch are delivered concurrently so that a slow receiver holds up nobody else.
 */
export async function consumeDeliveries(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  // A bad var falls back to its default here (logged): deliveries keep moving during a bad deploy.
  const settings = consumerSettings(env);
  let destinations: Record<string, Destination>;
  try {
    destinations = (await loadRules(env.RULES, settings.RULES_CACHE_SECONDS)).rules.destinations;
  } catch (error) {
    // Without the rules no destination can be resolved: try the whole batch again later.
    log("error", "delivery_batch_deferred", { messages: batch.messages.length, error: describe(error) });
    batch.retryAll({ delaySeconds: 30 });
    return;
  }
  const slots = new Slots(MAX_CONNECTIONS);
  await Promise.all(batch.messages.map((message) => handle(message, env, settings, destinations, slots)));
}

/** What becomes of one message. */
type Verdict =
  | { kind: "delivered"; fields: Record<string, unknown> }
  | { kind: "retry"; delaySeconds: number; fields: Record<string, unknown> }
  | {
      kind: "dead";
      reason: DeadLetterReason;
      detail: string;
      lastStatus?: number | undefined;
      lastError?: string | undefined;
      fields: Record<string, unknown>;
    };

async function handle(
  message: Message<unknown>,
  env: Env,
  settings: Settings,
  destinations: Record<string, Destination>,
  slots: Slots,
): Promise<void> {
  const delivery = readDeliveryMessage(decodeMessage(message.body));
  const attempt = (delivery?.attempts ?? 0) + 1;
  const verdict = await decide(message, delivery, attempt, env, settings, destinations, slots);
  const ids = { deliveryId: delivery?.deliveryId, destination: delivery?.destination, attempt };
  try {
    if (verdict.kind === "delivered") message.ack();
    else if (verdict.kind === "retry") await retry(env, message, delivery!, attempt, verdict.delaySeconds);
    else await giveUp(env, message, delivery, attempt, verdict);
  } catch (error) {
    // Only a failure to reach DEAD_LETTERS gets here (decide() never throws): keep the message rather than lose it.
    log("error", "dead_letter_send_failed", { ...ids, messageId: message.id, error: describe(error) });
    message.retry({ delaySeconds: 30 });
    return;
  }
  const outcome = verdict.kind === "dead" ? "dead_letter" : verdict.kind;
  log(verdict.kind === "delivered" ? "info" : "warn", "delivery_attempt", { ...ids, ...verdict.fields, outcome });
}

/** The verdict on one message: every failure, expected or not, becomes one; nothing is thrown. */
async function decide(
  message: Message<unknown>,
  delivery: DeliveryMessage | undefined,
  attempt: number,
  env: Env,
  settings: Settings,
  destinations: Record<string, Destination>,
  slots: Slots,
): Promise<Verdict> {
  let maxAttempts = 1;
  try {
    if (delivery === undefined) {
      throw new GiveUp("unreadable_message", "The queue message is not a delivery message this relay can read.");
    }
    const destination = Object.hasOwn(destinations, delivery.destination)
      ? destinations[delivery.destination]
      : undefined;
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
    if (outcome.kind === "delivered") return { kind: "delivered", fields };
    if (outcome.kind === "retry" && attempt < destination.maxAttempts) {
      const delaySeconds = nextDelaySeconds(outcome, attempt, settings.RETRY_SCHEDULE);
      return { kind: "retry", delaySeconds, fields: { ...fields, delaySeconds } };
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
      ...failure,
      lastStatus: status,
      lastError: error,
      fields: { ...fields, reason: failure.reason },
    };
  } catch (error) {
    if (error instanceof GiveUp) {
      return { kind: "dead", reason: error.reason, detail: error.message, fields: { reason: error.reason } };
    }
    // A bug, not the receiver's doing: counted as a failed attempt, so it ends as a dead letter, never a loop.
    const reason = `relay error: ${describe(error)}`;
    log("error", "delivery_failed_unexpectedly", { messageId: message.id, error: reason });
    if (attempt < maxAttempts) {
      const delaySeconds = nextDelaySeconds({ kind: "retry", reason }, attempt, settings.RETRY_SCHEDULE);
      return { kind: "retry", delaySeconds, fields: { error: reason, delaySeconds } };
    }
    const detail = `Attempt ${attempt} of ${maxAttempts} failed (${reason}); no attempts are left.`;
    return { kind: "dead", reason: "attempts_exhausted", detail, lastError: reason, fields: { error: reason } };
  }
}

async function send({ request, secrets }: PreparedRequest, timeoutMs: number): Promise<AttemptResult> {
  try {
    const response = await fetch(request, { signal: AbortSignal.timeout(timeoutMs) });
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
    await env.DELIVERIES.send(encodeMessage({ ...delivery, attempts: attempt }), { contentType: "text", delaySeconds });
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
  const record = deadLetter({
    deliveryId: delivery?.deliveryId ?? `unreadable.${message.id}`,
    destination: delivery?.destination ?? "(unknown)",
    reason: failure.reason,
    detail: failure.detail,
    lastStatus: failure.lastStatus,
    lastError: failure.lastError,
    attempts: delivery === undefined ? 0 : attempts,
    firstAttemptAt: delivery === undefined ? message.timestamp : new Date(delivery.receivedAt),
    at: new Date(),
    source: "relay",
    message: delivery,
    raw: delivery === undefined ? message.body : undefined,
  });
  await env.DEAD_LETTERS.send(encodeMessage(record), { contentType: "text" });
  message.ack();
}

/** At most `size` holders at once; the others wait in arrival order. */
class Slots {
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
