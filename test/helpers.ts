/**
 * The one helper module of the workerd tests: fixtures, signed calls, the admin API, rules, queue messages
 * and consumer runs. Types come from src/.
 */
import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { expect, vi } from "vitest";
import signatures from "../fixtures/extend/signatures.json";
import { bodyOf } from "../src/delivery/body.ts";
import type { Env } from "../src/env.ts";
import type { ErrorBody, ErrorCode } from "../src/errors.ts";
import { bodyAround, type Envelope, parseCall } from "../src/extend/envelope.ts";
import worker from "../src/index.ts";
import { resetRecentIds } from "../src/ingress/dedupe.ts";
import { ensureLedger } from "../src/ledger/schema.ts";
import { writeLedger } from "../src/ledger/write.ts";
import { decodeMessage, encodeMessage } from "../src/queues/codec.ts";
import type { DeadLetter } from "../src/queues/dead-letter.ts";
import { type Delivery, readDeliveriesMessage } from "../src/queues/delivery.ts";
import { resetRulesCache } from "../src/rules/store.ts";
import { msSignature } from "./cases/signature.ts";

export type { Delivery };
export { msSignature, readDeliveriesMessage };

/** Every sample call, as its exact text (CRLF and all), by file name. */
const raw = import.meta.glob<string>("../fixtures/extend/*.json", { query: "?raw", import: "default", eager: true });
export const FIXTURES: Record<string, string> = Object.fromEntries(
  Object.entries(raw)
    .filter(([path]) => !path.endsWith("signatures.json"))
    .map(([path, text]) => [path.slice(path.lastIndexOf("/") + 1), text]),
);
export const FIXTURE_SIGNATURES: Record<string, string> = signatures.files;
export const FIXTURE_SECRET = signatures.secret;
export const SEED_VECTOR = signatures.seedVector;
export const ADMIN_TOKEN = "test-admin-token-0123456789abcdef0123";
export const VIEWER_TOKEN = "test-viewer-token-0123456789abcdef012";
/** The client address every test request comes from unless told otherwise (the limiter counts per client). */
export const TEST_CLIENT = "192.0.2.10";

export function postWebhook(body: string | Uint8Array, headers: HeadersInit = {}): Promise<Response> {
  const all = new Headers(headers);
  if (!all.has("content-type")) all.set("content-type", "application/json");
  return exports.default.fetch("https://relay.test/webhook", { method: "POST", headers: all, body });
}

export function signedPost(body: string | Uint8Array, secret = FIXTURE_SECRET): Promise<Response> {
  return postWebhook(body, { "ms-signature": msSignature(body, secret) });
}

export function admin(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (!headers.has("authorization")) headers.set("authorization", `Bearer ${ADMIN_TOKEN}`);
  if (!headers.has("cf-connecting-ip")) headers.set("cf-connecting-ip", TEST_CLIENT);
  return exports.default.fetch(`https://relay.test/admin${path}`, { ...init, headers });
}

/** Calls the Worker with a modified environment (a missing secret, a bad var, a failing binding). */
export async function fetchWith(overrides: Partial<Record<keyof Env, unknown>>, request: Request): Promise<Response> {
  const ctx = createExecutionContext();
  const response = await worker.fetch(request as never, { ...env, ...overrides } as Env, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

/** Asserts an error answer: status, JSON, the code, and a message a person can read. */
export async function expectError(response: Response, status: number, code: ErrorCode): Promise<ErrorBody> {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toContain("application/json");
  const body = await response.json<ErrorBody>();
  expect(body.error).toBe(code);
  expect(body.message.length).toBeGreaterThan(10);
  return body;
}

/** Stores a rules document straight in KV (bypassing validation) and drops the isolate's caches. */
export async function putRules(rules: unknown): Promise<void> {
  await env.RULES.put("rules", JSON.stringify(rules));
  resetRulesCache();
  resetRecentIds();
}

/** Empties the ledger (its tables stay). */
export async function clearLedger(): Promise<void> {
  await ensureLedger(env.LEDGER);
  await env.LEDGER.batch(
    // ledger_names stays: a name's number never changes, and isolates remember them.
    [
      "ledger_attempts",
      "ledger_hourly",
      "ledger_alerts",
      "ledger_jobs",
      "ledger_deliveries",
      "ledger_keys",
      "ledger_actions",
      "ledger_sender_attempts",
      "ledger_text_parts",
      "ledger_text_objects",
      "ledger_calls",
      "activity",
      "rules_versions",
    ]
      .map((table) => env.LEDGER.prepare(`DELETE FROM ${table}`))
      // Numbering starts again (the rules history's versions, the activity log's ids).
      .concat(env.LEDGER.prepare("DELETE FROM sqlite_sequence")),
  );
}

/** A D1 binding whose every query fails, as an outage would. */
export function failingLedger(): D1Database {
  const fail = () => Promise.reject(new Error("D1_ERROR: the database is unavailable"));
  const statement = { bind: () => statement, first: fail, all: fail, run: fail, raw: fail };
  return { prepare: () => statement, batch: fail, exec: fail } as unknown as D1Database;
}

/** Waits until `check` passes (the queue consumers run on their own; the ledger follows a second or so later). */
export function eventually<T>(check: () => Promise<T> | T, timeout = 15_000): Promise<T> {
  return vi.waitFor(check, { timeout, interval: 100 });
}

export async function clearRules(): Promise<void> {
  await env.RULES.delete("rules");
  resetRulesCache();
}

/** A unique 32-hex Id so tests never collide on dedupe. */
export function freshId(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

export function envelope(notifications: unknown[], id = freshId()): string {
  return JSON.stringify({
    Id: id,
    Attempt: 1,
    Properties: { NotificationId: crypto.randomUUID() },
    Notifications: notifications,
  });
}

/** The rules used across tests: the example of docs/rules.md pointed at test receivers. */
export const EXAMPLE_RULES = {
  version: 1,
  destinations: {
    wms: { url: "https://wms.test/extend", signing: { scheme: "ms-signature", secret: "WMS_SECRET" } },
    shop: {
      url: "https://shop.test/hooks",
      signing: { scheme: "standard-webhooks", secret: "SHOP_SECRET" },
      headers: { "X-Api-Key": { secret: "SHOP_API_KEY" }, "X-Source": "extend" },
      timeoutMs: 10000,
      maxAttempts: 12,
      mode: "envelope",
    },
  },
  routes: [
    {
      name: "stock-yx-to-shop",
      actions: ["AvailableBalanceChanged", "BalanceChanged"],
      warehouses: ["YX"],
      to: ["shop"],
    },
    { name: "rp-purchases", actions: ["Purchase*"], where: { "Details.OrderNumber": { prefix: "RP-" } }, to: ["wms"] },
    {
      name: "orders",
      actions: ["OrderCreated", "OrderCancelled"],
      where: { "Details.OrderType": "NormalOrder" },
      to: ["wms", "shop"],
    },
    { name: "picking", actions: ["PickingStarted"], warehouses: ["ADR-1"], to: ["wms"] },
    { name: "archive", actions: ["*"], to: ["wms"], enabled: false },
  ],
};

/** The envelope fields deliveryMessage() uses unless told otherwise. */
export const SAMPLE_NOTIFICATIONS = [
  { Action: "OrderCreated", Details: { OrderNumber: "1", OrderType: "NormalOrder" } },
  { Action: "OrderCancelled", Details: { OrderNumber: "2", OrderType: "NormalOrder", Note: "Åsa 😀" } },
];

/**
 * A delivery message as the door would enqueue it for `destination`, carrying every notification of the
 * envelope `{Id, Attempt: 3, Properties, Extra, Notifications}` (or of `call`, given as JSON text).
 */
export function deliveryMessage(
  destination: string,
  overrides: Partial<Delivery> = {},
  call = JSON.stringify({
    Id: freshId(),
    Attempt: 3,
    Properties: { NotificationId: "n-1" },
    Extra: "kept",
    Notifications: SAMPLE_NOTIFICATIONS,
  }),
): Delivery {
  const parsed = parseCall(new TextEncoder().encode(call));
  const indices = parsed.envelope.Notifications.map((_, i) => i);
  return {
    v: 3,
    deliveryId: `${parsed.envelope.Id}.${destination}`,
    destination,
    routes: ["orders"],
    callId: parsed.envelope.Id,
    indices,
    ...bodyAround(parsed, indices),
    receivedAt: Date.parse("2026-11-28T10:00:00Z"),
    ...overrides,
  };
}

/** What the receiver of `message` gets at attempt `attempt`, parsed. */
export function requestBody(message: Delivery, attempt = 1) {
  return JSON.parse(bodyOf(message, attempt)) as Envelope & Record<string, unknown>;
}

/** A dead-letter record as the delivery consumer makes one (a 410 from the receiver). */
export function deadLetterRecord(
  destination = "wms",
  deadAt = new Date().toISOString(),
  message = deliveryMessage(destination),
): DeadLetter {
  return {
    kind: "dead-letter",
    deliveryId: message.deliveryId,
    destination,
    reason: "permanent_failure",
    detail: "The receiver answered HTTP 410, which is not retried.",
    lastStatus: 410,
    attempts: 1,
    firstAttemptAt: new Date(message.receivedAt).toISOString(),
    lastAttemptAt: deadAt,
    deadAt,
    source: "relay",
    message,
  };
}

/** `count` dead letters to `destination`, each of its own call, written to the ledger; their delivery ids. */
export async function storedDeadLetters(destination: string, count: number): Promise<string[]> {
  const records = Array.from({ length: count }, () =>
    deadLetterRecord(destination, new Date().toISOString(), deliveryMessage(destination)),
  );
  await writeLedger(
    env.LEDGER,
    env.PAYLOADS,
    records.map((record) => ({ kind: "dead" as const, record })),
  );
  return records.map((r) => r.deliveryId);
}

export interface ConsumeResult {
  explicitAcks: string[];
  /** Messages handed back to Queues (message.retry), with their delay. */
  retryMessages: { msgId: string; delaySeconds: number | undefined }[];
  /** Messages the handler sent to DELIVERIES itself (the next attempt), decoded, with their delay. */
  requeued: { body: Delivery; delaySeconds: number | undefined }[];
}

/**
 * Runs the Worker's queue handler on one batch of `bodies` (sent as the relay sends them: JSON text, unless a
 * body is given as a plain object or other value) and reports which messages were acked and which retried
 * with what delay.
 */
export async function consume(
  queue: string,
  bodies: unknown[],
  {
    attempts = 1,
    env: overrides = {},
    encode = true,
  }: { attempts?: number; env?: Record<string, unknown>; encode?: boolean } = {},
): Promise<ConsumeResult> {
  const batch = createMessageBatch(
    queue,
    bodies.map((body, i) => ({
      id: `m${i}`,
      timestamp: new Date("2026-11-28T10:00:01Z"),
      attempts,
      body: encode ? onTheQueue(body) : body,
    })),
  );
  // The harness records which messages were retried but not their delay: spy on retry() for that.
  const retrySpies = batch.messages.map((m) => vi.spyOn(m, "retry"));
  // What the handler sends to DELIVERIES is recorded, not enqueued: no test wants it delivered later.
  const requeued: ConsumeResult["requeued"] = [];
  // A DELIVERIES of the test's own (one that fails, say) is left as it is.
  const send = vi.spyOn(env.DELIVERIES, "send").mockImplementation(async (body, options) => {
    const read = readDeliveriesMessage(decodeMessage(body));
    expect(read.call).toBeUndefined();
    requeued.push({ body: read.delivery!, delaySeconds: options?.delaySeconds });
    return undefined as never;
  });
  const ctx = createExecutionContext();
  try {
    await worker.queue(batch as MessageBatch<unknown>, { ...env, ...overrides } as Env);
  } finally {
    send.mockRestore();
  }
  const result = await getQueueResult(batch, ctx);
  const retryMessages = batch.messages.flatMap((m, i) =>
    retrySpies[i]!.mock.calls.map(([options]) => ({ msgId: m.id, delaySeconds: options?.delaySeconds })),
  );
  expect(retryMessages.map((r) => r.msgId)).toEqual(result.retryMessages.map((r) => r.msgId));
  return { explicitAcks: result.explicitAcks, retryMessages, requeued };
}

/**
 * A body as the relay puts it on a queue: a delivery wrapped as DELIVERIES carries it (src/queues/delivery.ts),
 * `{delivery, call}` and records as JSON text; anything else (a string, an older relay's object) as given.
 */
function onTheQueue(body: unknown): unknown {
  if (typeof body !== "object" || body === null) return body;
  if ("head" in body && (body as { v?: unknown }).v === 3) return encodeMessage({ delivery: body });
  if ("delivery" in body || "kind" in body) return encodeMessage(body);
  return body;
}

/** What a spied `send` / `sendBatch` of a queue producer was given, decoded as the consumer decodes it. */
export function sentBodies<T = unknown>(spy: { mock: { calls: unknown[][] } }): T[] {
  return spy.mock.calls.flatMap(([first]) =>
    Array.isArray(first)
      ? first.map((m) => decodeMessage((m as { body: unknown }).body) as T)
      : [decodeMessage(first) as T],
  );
}

/** The deliveries a spied `send` / `sendBatch` of DELIVERIES was given, read as the consumer reads them. */
export function sentDeliveries(spy: { mock: { calls: unknown[][] } }): Delivery[] {
  return sentBodies(spy).flatMap((body) => readDeliveriesMessage(body).delivery ?? []);
}
