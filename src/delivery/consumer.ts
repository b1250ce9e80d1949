import type { Env } from "../env.ts";
import { describe } from "../errors.ts";
import { idsOf, writeLedger } from "../ledger/write.ts";
import { log } from "../log.ts";
import {
  type AttemptRecord,
  type CallRecord,
  callRecordSchema,
  cut,
  type DeadLetterReason,
  type DeliveryMessage,
  deadLetter,
  decodeMessage,
  encodeMessage,
  RECORD_TEXT_LIMITS,
  readDeliveryMessage,
} from "../queues.ts";
import type { Destination } from "../rules/schema.ts";
import { loadRules } from "../rules/store.ts";
import { consumerSettings, type Settings } from "../settings.ts";
import { type AttemptResult, classify, nextDelaySeconds } from "./outcome.ts";
import { batchMessages, MESSAGE_BUDGET, utf8Length } from "./planner.ts";
import { GiveUp, type PreparedRequest, prepareRequest, redact } from "./request.ts";

/**
 * Workers keep at most 6 connections open per invocation; a 7th fetch waits for a free one. A request's
 * timeout starts only once it holds one of these slots, so a slow receiver cannot make others time out.
 */
export const MAX_CONNECTIONS = 6;

/**
 * The DELIVERIES consumer. Delivery messages are delivered, retried or dead-lettered each on its own, the
 * messages of a batch concurrently so that a slow receiver holds up nobody else. What the batch means for the
 * ledger (the call records it carried, every attempt it made) then goes to the ledger queue in one message,
 * whose consumer writes large batches in one `db.batch`: the ledger never fails or delays a delivery
 * (docs/ledger.md).
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

  const records: (CallRecord | AttemptRecord)[] = calls.map((c) => c.record);
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
      const slots = new Slots(MAX_CONNECTIONS);
      const made = await Promise.all(
        deliveries.map(({ message, delivery }) => handle(message, delivery, env, settings, destinations, slots)),
      );
      for (const [i, attempt] of made.entries()) {
        const record = deliveries[i]!.delivery?.record;
        if (record !== undefined) records.push(record);
        if (attempt !== undefined) records.push(attempt);
      }
    }
  }
  if (await toLedger(env, records)) for (const { message } of calls) message.ack();
  else for (const { message } of calls) message.retry({ delaySeconds: 30 });
}

/**
 * Hands records to the ledger queue (in messages within Queues' limits). Should that fail, they are written to
 * the ledger at once instead; false when neither worked (logged at error with their ids).
 */
async function toLedger(env: Env, records: readonly (CallRecord | AttemptRecord)[]): Promise<boolean> {
  if (records.length === 0) return true;
  try {
    for (const batch of batchMessages(ledgerMessages(records))) {
      await env.LEDGER_RECORDS.sendBatch(batch.map((m) => ({ body: m.text, contentType: "text" as const })));
    }
    return true;
  } catch (error) {
    log("warn", "ledger_queue_failed", { records: records.length, error: describe(error) });
  }
  try {
    await writeLedger(env.LEDGER, records);
    return true;
  } catch (error) {
    log("error", "ledger_write_given_up", { error: describe(error), ...idsOf(records) });
    return false;
  }
}

/** Ledger messages (src/queues.ts, LedgerMessage) holding `records`, each within a queue message's budget. */
function ledgerMessages(records: readonly (CallRecord | AttemptRecord)[]): { text: string; bytes: number }[] {
  const messages: { text: string; bytes: number }[] = [];
  const open = '{"kind":"ledger","records":[';
  let parts: string[] = [];
  let bytes = open.length + 2;
  const flush = () => {
    if (parts.length > 0) messages.push({ text: `${open}${parts.join(",")}]}`, bytes });
    parts = [];
    bytes = open.length + 2;
  };
  for (const record of records) {
    const text = JSON.stringify(record);
    const size = utf8Length(text) + 1;
    if (parts.length > 0 && bytes + size > MESSAGE_BUDGET) flush();
    parts.push(text);
    bytes += size;
  }
  flush();
  return messages;
}

/** What becomes of one message. */
type Verdict =
  | { kind: "delivered"; fields: AttemptFields }
  | { kind: "retry"; delaySeconds: number; fields: AttemptFields }
  | {
      kind: "dead";
      reason: DeadLetterReason;
      detail: string;
      lastStatus?: number | undefined;
      lastError?: string | undefined;
      fields: AttemptFields;
    };

interface AttemptFields {
  status?: number | undefined;
  error?: string | undefined;
  durationMs?: number | undefined;
  delaySeconds?: number;
  reason?: string;
}

/** Settles one message and returns its attempt for the ledger (none for a message that is not a delivery). */
async function handle(
  message: Message<unknown>,
  delivery: DeliveryMessage | undefined,
  env: Env,
  settings: Settings,
  destinations: Record<string, Destination>,
  slots: Slots,
): Promise<AttemptRecord | undefined> {
  const attempt = (delivery?.attempts ?? 0) + 1;
  const at = Date.now();
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
    return undefined;
  }
  const outcome = verdict.kind === "dead" ? "dead_letter" : verdict.kind;
  // A first-time success is only in the ledger; everything else is worth a line.
  if (verdict.kind !== "delivered") log("warn", "delivery_attempt", { ...ids, ...verdict.fields, outcome });
  else if (attempt > 1) log("info", "delivery_recovered", { ...ids, ...verdict.fields });
  if (delivery === undefined) return undefined;
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
    ...(verdict.fields.status !== undefined && { status: verdict.fields.status }),
    ...((verdict.fields.error ?? verdict.fields.reason) !== undefined && {
      error: cut(verdict.fields.error ?? verdict.fields.reason!, RECORD_TEXT_LIMITS.lastError),
    }),
    ...(verdict.fields.durationMs !== undefined && { durationMs: verdict.fields.durationMs }),
    outcome,
    ...(legacyPayload(message, delivery) !== undefined && { payload: legacyPayload(message, delivery)! }),
    ...(verdict.kind === "dead" && {
      dead: { reason: verdict.reason, detail: cut(verdict.detail, RECORD_TEXT_LIMITS.detail) },
    }),
  };
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
    // The call's record went to the ledger with this attempt; the next one does not carry it again.
    const { record: _, ...next } = delivery;
    await env.DELIVERIES.send(encodeMessage({ ...next, attempts: attempt }), { contentType: "text", delaySeconds });
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
    message: delivery === undefined ? undefined : withoutRecord(delivery),
    raw: delivery === undefined ? message.body : undefined,
  });
  await env.DEAD_LETTERS.send(encodeMessage(record), { contentType: "text" });
  message.ack();
}

/** A delivery message without the call's record it may carry (which the ledger has by then). */
function withoutRecord(delivery: DeliveryMessage): DeliveryMessage {
  const { record: _, ...rest } = delivery;
  return rest;
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
