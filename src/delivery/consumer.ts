import type { Env } from "../env.ts";
import { describe } from "../errors.ts";
import { type LedgerRecord, writeLedger } from "../ledger/write.ts";
import { log } from "../log.ts";
import {
  type AttemptRecord,
  callRecordSchema,
  cut,
  type DeadLetterReason,
  type DeliveryMessage,
  deadLetter,
  decodeMessage,
  encodeMessage,
  type LedgerRetry,
  ledgerRetrySchema,
  RECORD_TEXT_LIMITS,
  readDeliveryMessage,
} from "../queues.ts";
import type { Destination } from "../rules/schema.ts";
import { loadRules } from "../rules/store.ts";
import { consumerSettings, type Settings } from "../settings.ts";
import { type AttemptResult, classify, nextDelaySeconds } from "./outcome.ts";
import { batchMessages, MESSAGE_BUDGET, plan, utf8Length } from "./planner.ts";
import { GiveUp, type PreparedRequest, prepareRequest, redact } from "./request.ts";

/**
 * Workers keep at most 6 connections open per invocation; a 7th fetch waits for a free one. A request's
 * timeout starts only once it holds one of these slots, so a slow receiver cannot make others time out.
 */
export const MAX_CONNECTIONS = 6;

/** Tries of a call record or a ledger retry whose ledger write keeps failing, before it is given up (logged). */
export const LEDGER_TRIES = 10;

/**
 * The DELIVERIES consumer. Delivery messages are delivered, retried or dead-lettered each on its own, the
 * messages of a batch concurrently so that a slow receiver holds up nobody else. Then everything the batch
 * means for the ledger (the call records it carried, every attempt it made) is written in one `db.batch`; a
 * ledger that fails or is slow never fails or delays a delivery (docs/ledger.md).
 */
export async function consumeDeliveries(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  // A bad var falls back to its default here (logged): deliveries keep moving during a bad deploy.
  const settings = consumerSettings(env);
  const deliveries: { message: Message<unknown>; delivery: DeliveryMessage | undefined }[] = [];
  const ledgerMessages: { message: Message<unknown>; records: LedgerRecord[] }[] = [];
  for (const message of batch.messages) {
    const body = decodeMessage(message.body);
    const kind = typeof body === "object" && body !== null ? (body as { kind?: unknown }).kind : undefined;
    const call = kind === "call" ? callRecordSchema.safeParse(body) : undefined;
    const retry = kind === "ledger" ? ledgerRetrySchema.safeParse(body) : undefined;
    if (call?.success) ledgerMessages.push({ message, records: [call.data] });
    else if (retry?.success) ledgerMessages.push({ message, records: retry.data.records });
    else deliveries.push({ message, delivery: readDeliveryMessage(body) });
  }

  const attempts: AttemptRecord[] = [];
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
      for (const record of made) if (record !== undefined) attempts.push(record);
    }
  }
  await recordInLedger(env, ledgerMessages, attempts);
}

/**
 * Writes the batch's ledger records. Should that fail, call records and ledger retries go back to Queues with a
 * growing delay (up to LEDGER_TRIES tries) and the attempts become a ledger retry message; what cannot be
 * kept for a retry is logged at error, with its ids, as given up.
 */
async function recordInLedger(
  env: Env,
  queued: readonly { message: Message<unknown>; records: LedgerRecord[] }[],
  attempts: readonly AttemptRecord[],
): Promise<void> {
  const records = [...queued.flatMap((q) => q.records), ...attempts];
  if (records.length === 0) return;
  try {
    await writeLedger(env.LEDGER, records);
    for (const { message } of queued) message.ack();
    return;
  } catch (error) {
    log("error", "ledger_write_failed", { records: records.length, error: describe(error) });
  }
  for (const { message, records: kept } of queued) {
    if (message.attempts >= LEDGER_TRIES) {
      log("error", "ledger_write_given_up", { tries: message.attempts, ...idsOf(kept) });
      message.ack();
    } else message.retry({ delaySeconds: Math.min(3600, 10 * 2 ** (message.attempts - 1)) });
  }
  if (attempts.length === 0) return;
  const retries = batchMessages(
    chunkRecords(attempts).map((chunk) => plan<LedgerRetry>({ kind: "ledger", records: chunk })),
  );
  try {
    for (const batch of retries) {
      await env.DELIVERIES.sendBatch(
        batch.map((m) => ({ body: m.text, contentType: "text" as const, delaySeconds: 10 })),
      );
    }
  } catch (error) {
    log("error", "ledger_write_given_up", { error: describe(error), ...idsOf(attempts) });
  }
}

/** Records in groups that fit a queue message each. */
function chunkRecords(records: readonly AttemptRecord[]): AttemptRecord[][] {
  const chunks: AttemptRecord[][] = [];
  let current: AttemptRecord[] = [];
  let bytes = 100;
  for (const record of records) {
    const size = utf8Length(JSON.stringify(record)) + 1;
    if (current.length > 0 && bytes + size > MESSAGE_BUDGET) {
      chunks.push(current);
      current = [];
      bytes = 100;
    }
    current.push(record);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

function idsOf(records: readonly LedgerRecord[]): { calls: string[]; deliveries: string[] } {
  return {
    calls: records.flatMap((r) => (r.kind === "call" ? [r.id] : [])),
    deliveries: records.flatMap((r) =>
      r.kind === "attempt" ? [r.deliveryId] : r.kind === "dead" ? [r.record.deliveryId] : [],
    ),
  };
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
    payload: payloadOf(message, delivery),
    ...(verdict.kind === "dead" && {
      dead: { reason: verdict.reason, detail: cut(verdict.detail, RECORD_TEXT_LIMITS.detail) },
    }),
  };
}

/** The delivery message as the door enqueued it (what a resend sends): the message's own text when it is that. */
function payloadOf(message: Message<unknown>, delivery: DeliveryMessage): string {
  if (typeof message.body === "string" && delivery.attempts === undefined) return message.body;
  const { attempts: _, ...first } = delivery;
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
