import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { createHmac } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { version } from "../../package.json";
import type { DeadLetter } from "../../src/dead-letters/record.ts";
import type { DeliveryMessage } from "../../src/delivery/message.ts";
import worker from "../../src/index.ts";
import type { Env } from "../../src/settings.ts";
import { EXAMPLE_RULES, freshId, putRules, signedPost } from "../helpers.ts";

const RULES = {
  ...EXAMPLE_RULES,
  destinations: {
    ...EXAMPLE_RULES.destinations,
    slow: { url: "https://slow.test/", timeoutMs: 1000, maxAttempts: 3 },
    off: { url: "https://off.test/", enabled: false },
    keyless: { url: "https://keyless.test/", signing: { scheme: "ms-signature", secret: "NOT_SET_ANYWHERE" } },
  },
};

let fetchSpy: ReturnType<typeof vi.spyOn<typeof globalThis, "fetch">>;
/** The requests the consumer sent, with their exact body bytes, in order. */
let captured: { request: Request; body: Uint8Array }[];
let deadLetterSend: ReturnType<typeof vi.spyOn>;
/** What each test's receivers answer, by host. */
let answer: (request: Request) => Response | Promise<Response>;

beforeEach(async () => {
  await putRules(RULES);
  answer = () => new Response("ok");
  captured = [];
  fetchSpy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    captured.push({ request, body: new Uint8Array(await request.clone().arrayBuffer()) });
    return answer(request);
  });
  deadLetterSend = vi.spyOn(env.DEAD_LETTERS, "send");
});
afterEach(() => vi.restoreAllMocks());

function delivery(destination: string, overrides: Partial<DeliveryMessage> = {}): DeliveryMessage {
  const id = freshId();
  return {
    v: 1,
    deliveryId: `${id}.${destination}`,
    destination,
    routes: ["orders"],
    envelope: { Id: id, Attempt: 3, Properties: { NotificationId: "n-1" }, Extra: "kept" },
    notifications: [
      { Action: "OrderCreated", Details: { OrderNumber: "1", OrderType: "NormalOrder" } },
      { Action: "OrderCancelled", Details: { OrderNumber: "2", OrderType: "NormalOrder", Note: "Åsa 😀" } },
    ],
    receivedAt: Date.parse("2026-11-28T10:00:00Z"),
    ...overrides,
  };
}

async function consume(messages: DeliveryMessage[], attempts = 1) {
  const batch = createMessageBatch<DeliveryMessage>(
    "extend-relay-deliveries",
    messages.map((body, i) => ({ id: `m${i}`, timestamp: new Date("2026-11-28T10:00:01Z"), attempts, body })),
  );
  // The test harness records which messages were retried but not their delay: spy on retry() for that.
  const retrySpies = batch.messages.map((m) => vi.spyOn(m, "retry"));
  const ctx = createExecutionContext();
  await worker.queue(batch as MessageBatch<unknown>, env as Env);
  const result = await getQueueResult(batch, ctx);
  const retryMessages = batch.messages.flatMap((m, i) =>
    retrySpies[i]!.mock.calls.map(([options]) => ({ msgId: m.id, delaySeconds: options?.delaySeconds })),
  );
  expect(retryMessages.map((r) => r.msgId)).toEqual(result.retryMessages.map((r) => r.msgId));
  return { ...result, retryMessages };
}

const sent = () => captured;

const deadLetters = (): DeadLetter[] => deadLetterSend.mock.calls.map((call: unknown[]) => call[0] as DeadLetter);

describe("the request a destination receives", () => {
  it("is the sender's envelope shape with the matched notifications, our headers and an ms-signature over the bytes", async () => {
    const message = delivery("wms");
    const result = await consume([message], 2);
    expect(result.explicitAcks).toEqual(["m0"]);
    const [{ request, body }] = sent() as [{ request: Request; body: Uint8Array }];
    expect(request.method).toBe("POST");
    expect(request.url).toBe("https://wms.test/extend");
    expect(request.redirect).toBe("manual");
    expect(JSON.parse(new TextDecoder().decode(body))).toEqual({
      Id: message.envelope.Id,
      Attempt: 2,
      Properties: { NotificationId: "n-1" },
      Extra: "kept",
      Notifications: message.notifications,
    });
    expect(request.headers.get("content-type")).toBe("application/json");
    expect(request.headers.get("user-agent")).toBe(`extend-relay/${version}`);
    expect(request.headers.get("x-relay-delivery-id")).toBe(message.deliveryId);
    expect(request.headers.get("x-relay-attempt")).toBe("2");
    const expected = `sha256=${createHmac("sha256", env.WMS_SECRET).update(body).digest("hex").toUpperCase()}`;
    expect(request.headers.get("ms-signature")).toBe(expected);
  });

  it("carries static and secret headers and a Standard Webhooks signature the official package verifies", async () => {
    const message = delivery("shop");
    await consume([message]);
    const [{ request, body }] = sent() as [{ request: Request; body: Uint8Array }];
    expect(request.headers.get("x-api-key")).toBe(env.SHOP_API_KEY);
    expect(request.headers.get("x-source")).toBe("extend");
    expect(request.headers.get("webhook-id")).toBe(message.deliveryId);
    expect(Math.abs(Number(request.headers.get("webhook-timestamp")) - Date.now() / 1000)).toBeLessThan(60);
    const headers = Object.fromEntries(request.headers);
    const verified = new Webhook(env.SHOP_SECRET).verify(new TextDecoder().decode(body), headers);
    expect(verified).toMatchObject({ Id: message.envelope.Id, Notifications: message.notifications });
    expect(() =>
      new Webhook(`whsec_${btoa("another secret entirely")}`).verify(new TextDecoder().decode(body), headers),
    ).toThrow();
  });
});

describe("outcomes", () => {
  it.each([500, 503, 408, 425, 429])("retries %i with the RETRY_SCHEDULE delay", async (status) => {
    answer = () => new Response("no", { status });
    const result = await consume([delivery("wms")]);
    // RETRY_SCHEDULE is "1,2,3" in tests: attempt 1 waits 1 s ± 20%, which rounds to 1.
    expect(result.retryMessages).toEqual([{ msgId: "m0", delaySeconds: 1 }]);
    expect(result.explicitAcks).toEqual([]);
    expect(deadLetterSend).not.toHaveBeenCalled();
  });

  it("honours Retry-After in seconds and as an HTTP date", async () => {
    answer = () => new Response("slow down", { status: 429, headers: { "Retry-After": "120" } });
    expect((await consume([delivery("wms")])).retryMessages).toEqual([{ msgId: "m0", delaySeconds: 120 }]);
    const inFiveMinutes = new Date(Date.now() + 300_000).toUTCString();
    answer = () => new Response("down", { status: 503, headers: { "Retry-After": inFiveMinutes } });
    const [retry] = (await consume([delivery("wms")])).retryMessages;
    expect(retry!.delaySeconds).toBeGreaterThanOrEqual(298);
    expect(retry!.delaySeconds).toBeLessThanOrEqual(300);
  });

  it.each([
    [410, "HTTP 410"],
    [400, "HTTP 400"],
    [302, "HTTP 302: redirects are not followed"],
  ])("dead-letters %i at once as a permanent failure", async (status, reason) => {
    answer = () =>
      new Response(null, { status, headers: status === 302 ? { Location: "https://elsewhere.test/" } : {} });
    const message = delivery("wms");
    const result = await consume([message]);
    expect(result.explicitAcks).toEqual(["m0"]);
    expect(fetchSpy).toHaveBeenCalledTimes(1);
    const [record] = deadLetters();
    expect(record).toMatchObject({
      deliveryId: message.deliveryId,
      destination: "wms",
      reason: "permanent_failure",
      lastStatus: status,
      attempts: 1,
      source: "relay",
      message,
    });
    expect(record!.detail).toContain(reason);
  });

  it("retries a network error", async () => {
    answer = () => {
      throw new TypeError("Network connection lost.");
    };
    const result = await consume([delivery("wms")]);
    expect(result.retryMessages).toHaveLength(1);
  });

  it("gives up after the destination's timeout and retries", async () => {
    fetchSpy.mockImplementation(
      (_input, init) =>
        new Promise((_, reject) => init!.signal!.addEventListener("abort", () => reject(init!.signal!.reason))),
    );
    const started = Date.now();
    const result = await consume([delivery("slow")]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(result.retryMessages).toEqual([{ msgId: "m0", delaySeconds: 1 }]);
  });

  it("dead-letters when maxAttempts is used up, and the record lands in STATE", async () => {
    answer = () => new Response("down", { status: 503 });
    const message = delivery("slow"); // maxAttempts 3
    const result = await consume([message], 3);
    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks).toEqual(["m0"]);
    const [record] = deadLetters();
    expect(record).toMatchObject({ reason: "attempts_exhausted", attempts: 3, lastStatus: 503 });
    expect(record!.detail).toBe("Attempt 3 of 3 failed (HTTP 503); no attempts are left.");
    await vi.waitFor(async () => expect(await env.STATE.get(`dead:${message.deliveryId}`)).not.toBeNull(), {
      timeout: 15_000,
      interval: 100,
    });
  });

  it("dead-letters a destination that was removed or disabled after enqueue, without calling it", async () => {
    const gone = delivery("deleted-since");
    const off = delivery("off");
    const result = await consume([gone, off]);
    expect(fetchSpy).not.toHaveBeenCalled();
    expect(result.explicitAcks.sort()).toEqual(["m0", "m1"]);
    expect(deadLetters().map((r) => [r.deliveryId, r.reason])).toEqual(
      expect.arrayContaining([
        [gone.deliveryId, "destination_missing"],
        [off.deliveryId, "destination_disabled"],
      ]),
    );
  });

  it("dead-letters with a clear reason when the signing secret is missing from the environment", async () => {
    const result = await consume([delivery("keyless")]);
    expect(fetchSpy).not.toHaveBeenCalled();
    expect(result.explicitAcks).toEqual(["m0"]);
    const [record] = deadLetters();
    expect(record).toMatchObject({ reason: "secret_missing" });
    expect(record!.detail).toBe("The Worker secret NOT_SET_ANYWHERE named by the rules is not set.");
  });

  it("dead-letters a message it cannot read", async () => {
    const batch = createMessageBatch("extend-relay-deliveries", [
      { id: "junk", timestamp: new Date(), attempts: 1, body: { hello: "world" } },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env as Env);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toEqual(["junk"]);
    expect(deadLetters()[0]).toMatchObject({
      reason: "invalid_message",
      deliveryId: "unreadable.junk",
      raw: { hello: "world" },
    });
  });

  it("keeps a message when the dead-letter queue cannot take it", async () => {
    answer = () => new Response(null, { status: 410 });
    deadLetterSend.mockRejectedValue(new Error("Queue send failed"));
    const result = await consume([delivery("wms")]);
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages).toHaveLength(1);
  });

  it("settles each message of a batch on its own, concurrently", async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    answer = async (request) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, 20));
      inFlight--;
      return new Response(null, { status: request.url.startsWith("https://shop.test") ? 500 : 200 });
    };
    const result = await consume([delivery("wms"), delivery("shop"), delivery("wms")]);
    expect(result.explicitAcks.sort()).toEqual(["m0", "m2"]);
    expect(result.retryMessages).toEqual([{ msgId: "m1", delaySeconds: 1 }]);
    expect(maxInFlight).toBe(3);
  });
});

describe("through the queue", () => {
  it("delivers what the ingress enqueued, via the consumer wired in wrangler.toml", async () => {
    const body = JSON.stringify({
      Id: freshId(),
      Attempt: 1,
      Properties: { NotificationId: "q" },
      Notifications: [{ Action: "PickingStarted", Details: { Order: { OrderNumber: "802624", Warehouse: "ADR-1" } } }],
    });
    const id = JSON.parse(body).Id as string;
    expect((await signedPost(body)).status).toBe(202);
    await vi.waitFor(
      async () => {
        const requests = sent().filter(({ request }) => request.headers.get("x-relay-delivery-id") === `${id}.wms`);
        expect(requests).toHaveLength(1);
        expect(JSON.parse(new TextDecoder().decode(requests[0]!.body)).Notifications[0].Action).toBe("PickingStarted");
      },
      { timeout: 15_000, interval: 100 },
    );
  });
});
