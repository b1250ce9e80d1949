import { version } from "../../package.json";
import type { DeadLetter } from "../dead-letters/record.ts";
import { describe, RelayError } from "../errors.ts";
import { log } from "../log.ts";
import type { Destination } from "../rules/schema.ts";
import { loadRules } from "../rules/store.ts";
import { type Env, type Settings, secretOf, settingsOf } from "../settings.ts";
import { type DeliveryMessage, deliveryMessageSchema } from "./message.ts";
import { type AttemptResult, classify, nextDelaySeconds, type Outcome } from "./outcome.ts";
import { missingSecret, signatureHeaders } from "./signers.ts";

const USER_AGENT = `extend-relay/${version}`;
const encoder = new TextEncoder();

/**
 * The DELIVERIES consumer: each message is delivered, retried or dead-lettered on its own, and the
 * messages of a batch are delivered concurrently so that a slow receiver holds up nobody else.
 */
export async function consumeDeliveries(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  let settings: Settings;
  let destinations: Record<string, Destination>;
  try {
    settings = settingsOf(env);
    destinations = (await loadRules(env.RULES, settings.rulesCacheSeconds)).rules.destinations;
  } catch (error) {
    // Without settings or rules nothing can be decided: try the whole batch again later.
    log("error", "delivery_batch_deferred", { messages: batch.messages.length, error: describe(error) });
    batch.retryAll({ delaySeconds: 30 });
    return;
  }
  await Promise.all(batch.messages.map((message) => handle(message, env, settings, destinations)));
}

async function handle(
  message: Message<unknown>,
  env: Env,
  settings: Settings,
  destinations: Record<string, Destination>,
): Promise<void> {
  try {
    const parsed = deliveryMessageSchema.safeParse(message.body);
    if (!parsed.success) {
      await deadLetter(env, message, undefined, {
        reason: "invalid_message",
        detail: "The queue message is not a delivery message this relay can read.",
      });
      return;
    }
    await deliver(message, parsed.data, env, settings, destinations);
  } catch (error) {
    // Only a failure to reach DEAD_LETTERS gets here: keep the message rather than lose it.
    log("error", "delivery_failed_unexpectedly", { messageId: message.id, error: describe(error) });
    message.retry({ delaySeconds: 30 });
  }
}

async function deliver(
  message: Message<unknown>,
  delivery: DeliveryMessage,
  env: Env,
  settings: Settings,
  destinations: Record<string, Destination>,
): Promise<void> {
  const attempt = message.attempts;
  const destination = Object.hasOwn(destinations, delivery.destination)
    ? destinations[delivery.destination]
    : undefined;
  if (destination === undefined || !destination.enabled) {
    const reason = destination === undefined ? "destination_missing" : "destination_disabled";
    await deadLetter(env, message, delivery, {
      reason,
      detail:
        destination === undefined
          ? `Destination "${delivery.destination}" is no longer in the rules; add it back and replay.`
          : `Destination "${delivery.destination}" is disabled; enable it and replay.`,
    });
    logAttempt(delivery, attempt, { outcome: "dead_letter", reason });
    return;
  }

  const started = Date.now();
  let request: Request;
  try {
    request = await buildRequest(delivery, destination, attempt, env, Math.floor(started / 1000));
  } catch (error) {
    if (!(error instanceof RelayError)) throw error;
    await deadLetter(env, message, delivery, { reason: error.code, detail: error.message });
    logAttempt(delivery, attempt, { outcome: "dead_letter", reason: error.code });
    return;
  }

  const result = await send(request, destination.timeoutMs);
  const durationMs = Date.now() - started;
  const outcome = classify(result);
  const status = result.kind === "response" ? result.status : undefined;
  const error = result.kind === "response" ? undefined : outcome.kind === "delivered" ? undefined : outcome.reason;

  if (outcome.kind === "delivered") {
    message.ack();
    logAttempt(delivery, attempt, { status, durationMs, outcome: "delivered" });
    return;
  }
  if (outcome.kind === "retry" && attempt < destination.maxAttempts) {
    const delaySeconds = nextDelaySeconds(outcome, attempt, settings.retrySchedule);
    message.retry({ delaySeconds });
    logAttempt(delivery, attempt, { status, error, durationMs, outcome: "retry", delaySeconds });
    return;
  }
  const failure = describeFailure(outcome, attempt, destination.maxAttempts);
  await deadLetter(env, message, delivery, { ...failure, lastStatus: status, lastError: error });
  logAttempt(delivery, attempt, { status, error, durationMs, outcome: "dead_letter", reason: failure.reason });
}

function describeFailure(outcome: Exclude<Outcome, { kind: "delivered" }>, attempt: number, maxAttempts: number) {
  if (outcome.kind === "permanent") {
    return { reason: "permanent_failure", detail: `The receiver answered ${outcome.reason}, which is not retried.` };
  }
  return {
    reason: "attempts_exhausted",
    detail: `Attempt ${attempt} of ${maxAttempts} failed (${outcome.reason}); no attempts are left.`,
  };
}

/** The downstream request (SPEC §4): the sender's envelope shape with only this delivery's notifications. */
async function buildRequest(
  delivery: DeliveryMessage,
  destination: Destination,
  attempt: number,
  env: Env,
  nowSeconds: number,
): Promise<Request> {
  const body = encoder.encode(
    JSON.stringify({ ...delivery.envelope, Attempt: attempt, Notifications: delivery.notifications }),
  );
  const headers: Record<string, string> = {
    "Content-Type": "application/json",
    "User-Agent": USER_AGENT,
    "X-Relay-Delivery-Id": delivery.deliveryId,
    "X-Relay-Attempt": String(attempt),
  };
  for (const [name, value] of Object.entries(destination.headers)) {
    if (typeof value === "string") headers[name] = value;
    else {
      const secret = secretOf(env, value.secret);
      if (secret === undefined) throw missingSecret(value.secret);
      headers[name] = secret;
    }
  }
  const secret = destination.signing.scheme === "none" ? undefined : secretOf(env, destination.signing.secret);
  Object.assign(headers, await signatureHeaders(destination.signing, secret, body, delivery.deliveryId, nowSeconds));
  return new Request(destination.url, { method: "POST", headers, body, redirect: "manual" });
}

async function send(request: Request, timeoutMs: number): Promise<AttemptResult> {
  try {
    const response = await fetch(request, { signal: AbortSignal.timeout(timeoutMs) });
    // The body is not needed; release the connection.
    await response.body?.cancel().catch(() => {});
    return { kind: "response", status: response.status, retryAfter: response.headers.get("retry-after") };
  } catch (error) {
    if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) {
      return { kind: "timeout", timeoutMs };
    }
    return { kind: "network", error: describe(error) };
  }
}

/** Hands a failed delivery to DEAD_LETTERS, then acks it: the message is never dropped in between. */
async function deadLetter(
  env: Env,
  message: Message<unknown>,
  delivery: DeliveryMessage | undefined,
  failure: { reason: string; detail: string; lastStatus?: number | undefined; lastError?: string | undefined },
): Promise<void> {
  const now = new Date().toISOString();
  const record: DeadLetter = {
    kind: "dead-letter",
    deliveryId: delivery?.deliveryId ?? `unreadable.${message.id}`,
    destination: delivery?.destination ?? "(unknown)",
    reason: failure.reason,
    detail: failure.detail,
    ...(failure.lastStatus !== undefined && { lastStatus: failure.lastStatus }),
    ...(failure.lastError !== undefined && { lastError: failure.lastError }),
    attempts: message.attempts,
    firstAttemptAt: message.timestamp.toISOString(),
    lastAttemptAt: now,
    deadAt: now,
    source: "relay",
    ...(delivery !== undefined ? { message: delivery } : { raw: message.body }),
  };
  await env.DEAD_LETTERS.send(record, { contentType: "json" });
  message.ack();
}

function logAttempt(delivery: DeliveryMessage, attempt: number, fields: Record<string, unknown>): void {
  const level = fields.outcome === "delivered" ? "info" : "warn";
  log(level, "delivery_attempt", {
    deliveryId: delivery.deliveryId,
    destination: delivery.destination,
    attempt,
    ...fields,
  });
}
