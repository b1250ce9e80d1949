import { env, exports } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { bodyOf } from "../../src/delivery/body.ts";
import app from "../../src/index.ts";
import { resetRecentIds } from "../../src/ingress/dedupe.ts";
import { getCall, hasCall } from "../../src/ledger/calls.ts";
import type { CallRecord } from "../../src/queues/call.ts";
import { type Delivery, readDeliveriesMessage } from "../../src/queues/delivery.ts";
import {
  clearRules,
  EXAMPLE_RULES,
  envelope,
  FIXTURE_SIGNATURES,
  FIXTURES,
  freshId,
  msSignature,
  postWebhook,
  putRules,
  requestBody,
  sentBodies,
  signedPost,
} from "../helpers.ts";

let sendBatch: ReturnType<typeof vi.spyOn>;
beforeEach(async () => {
  await putRules(EXAMPLE_RULES);
  // Deliveries are not under test here: receivers answer 200 so the consumer settles quietly.
  vi.spyOn(globalThis, "fetch").mockResolvedValue(new Response("ok"));
  sendBatch = vi.spyOn(env.DELIVERIES, "sendBatch");
});
afterEach(() => vi.restoreAllMocks());

/** What the door put on DELIVERIES, read as the consumer reads it. */
const sent = () => sentBodies(sendBatch).map(readDeliveriesMessage);
const sentMessages = (): Delivery[] => sent().flatMap((m) => (m.delivery === undefined ? [] : [m.delivery]));
/** The call records, riding beside a delivery or in messages of their own. */
const sentRecords = (): CallRecord[] => sent().flatMap((m) => (m.call === undefined ? [] : [m.call]));

describe("POST /webhook accepts signed calls", () => {
  it.each(Object.keys(FIXTURE_SIGNATURES))("accepts the sample %s with its precomputed signature", async (name) => {
    const body = FIXTURES[name]!;
    const response = await postWebhook(body, { "ms-signature": FIXTURE_SIGNATURES[name]! });
    expect(response.status).toBe(202);
    const json = await response.json<Record<string, unknown>>();
    const parsed = JSON.parse(body);
    expect(json).toMatchObject({ status: "accepted", id: parsed.Id, notifications: parsed.Notifications.length });
    expect(json.deliveries).toBe(sentMessages().length);
  });

  it("routes the mixed sample to the destinations the rules pick, with notifications in order", async () => {
    const body = FIXTURES["multi.json"]!;
    const id = JSON.parse(body).Id as string;
    // A fresh Id: the sample was already accepted (and remembered) above in this file's storage.
    const fresh = body.replace(id, freshId());
    const response = await signedPost(fresh);
    expect(await response.json()).toMatchObject({ status: "accepted", notifications: 6, deliveries: 2 });
    const messages = sentMessages();
    const byDestination = Object.fromEntries(messages.map((m) => [m.destination, m]));
    expect(requestBody(byDestination.shop!).Notifications.map((n) => n.Action)).toEqual([
      "AvailableBalanceChanged",
      "OrderCreated",
      "BalanceChanged",
    ]);
    expect(byDestination.shop!.routes).toEqual(["stock-yx-to-shop", "orders"]);
    expect(requestBody(byDestination.wms!).Notifications.map((n) => n.Action)).toEqual([
      "OrderCreated",
      "PickingStarted",
    ]);
    expect(byDestination.wms!.indices).toEqual([1, 2]);
    expect(byDestination.wms!.deliveryId).toBe(`${JSON.parse(fresh).Id}.wms`);
    const { Notifications: _, ...fields } = requestBody(byDestination.wms!);
    expect(fields).toEqual({ Id: JSON.parse(fresh).Id, Attempt: 1, Properties: JSON.parse(fresh).Properties });
  });

  it("keeps unknown fields at every level in the queue message", async () => {
    await putRules({
      version: 1,
      destinations: { all: { url: "https://all.test/" } },
      routes: [{ name: "all", actions: ["*"], to: ["all"] }],
    });
    const body = JSON.stringify({
      Id: freshId(),
      Attempt: 2,
      Properties: { NotificationId: "x", Extra: [1, 2] },
      Notifications: [
        { Action: "StockTakeFinished", Details: { Warehouse: "YX", Deep: { a: [true, null] } }, Meta: "kept" },
      ],
      Added: { later: true },
    });
    expect((await signedPost(body)).status).toBe(202);
    const [message] = sentMessages();
    expect(requestBody(message!, 2)).toEqual(JSON.parse(body));
  });

  it("keeps even keys that JavaScript treats specially, such as __proto__, on the way to the receiver", async () => {
    await putRules({
      version: 1,
      destinations: { all: { url: "https://all.test/" } },
      routes: [{ name: "all", actions: ["*"], to: ["all"] }],
    });
    const body = `{"Id":"${freshId()}","Attempt":1,"Notifications":[{"Action":"OrderCreated","Details":{"OrderNumber":"1"},"__proto__":{"kept":true}}],"__proto__":"top"}`;
    expect((await signedPost(body)).status).toBe(202);
    const text = bodyOf(sentMessages()[0]!, 1);
    expect(text).toContain('"__proto__":{"kept":true}');
    expect(text).toContain('"__proto__":"top"');
  });

  it("verifies against the previous secret during a rotation", async () => {
    const body = envelope([{ Action: "OrderCreated", Details: { OrderType: "NormalOrder" } }]);
    const handler = app.fetch!;
    const request = () =>
      new Request("https://relay.test/webhook", {
        method: "POST",
        body,
        headers: { "ms-signature": msSignature(body, "old-secret") },
      });
    const rotated = { ...env, EXTEND_WEBHOOK_SECRET: "new-secret", EXTEND_WEBHOOK_SECRET_PREVIOUS: "old-secret" };
    const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext;
    expect((await handler(request() as never, rotated, ctx)).status).toBe(202);
    const notRotated = { ...env, EXTEND_WEBHOOK_SECRET: "new-secret" };
    const refused = await handler(request() as never, notRotated, ctx);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ error: "signature_invalid" });
  });

  it("accepts a call with no notifications and one that matches nothing, enqueuing no delivery", async () => {
    for (const notifications of [[], [{ Action: "CustomerCreated", Details: { CustomerNumber: "1" } }]]) {
      const response = await signedPost(envelope(notifications));
      expect(await response.json()).toMatchObject({ status: "accepted", deliveries: 0 });
    }
    expect(sentMessages()).toEqual([]);
    expect(sentRecords()).toHaveLength(2);
  });

  it("routes nothing when KV holds no rules document", async () => {
    await clearRules();
    const response = await signedPost(envelope([{ Action: "OrderCreated", Details: { OrderType: "NormalOrder" } }]));
    expect(response.status).toBe(202);
    expect(await response.json()).toMatchObject({ deliveries: 0 });
  });

  it("accepts a chunked body with no Content-Length under the limit", async () => {
    const body = new TextEncoder().encode(
      envelope([{ Action: "OrderCreated", Details: { OrderType: "NormalOrder" } }]),
    );
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(body.slice(0, 10));
        controller.enqueue(body.slice(10));
        controller.close();
      },
    });
    const response = await exports.default.fetch("https://relay.test/webhook", {
      method: "POST",
      body: stream,
      headers: { "ms-signature": msSignature(body) },
    });
    expect(response.status).toBe(202);
  });
});

describe("the door's cost", () => {
  it("a first attempt reads and writes no storage on its way to the answer: one sendBatch, the call's record on its last delivery", async () => {
    const body = envelope([{ Action: "OrderCreated", Details: { OrderNumber: "77", OrderType: "NormalOrder" } }]);
    await signedPost(envelope([])); // warms the rules cache
    sendBatch.mockClear();
    const storage = [
      vi.spyOn(env.LEDGER, "prepare"),
      vi.spyOn(env.LEDGER, "batch"),
      vi.spyOn(env.RULES, "get"),
      vi.spyOn(env.DELIVERIES, "send"),
    ];
    const response = await signedPost(body);
    expect(response.status).toBe(202);
    for (const spy of storage) expect(spy).not.toHaveBeenCalled();
    expect(sendBatch).toHaveBeenCalledTimes(1);
    const [batch] = sendBatch.mock.calls[0] as [MessageSendRequest<string>[]];
    expect(batch).toHaveLength(2); // two deliveries, no message of its own for the record
    const last = readDeliveriesMessage(JSON.parse(batch.at(-1)!.body));
    expect(last.delivery).toBeDefined();
    expect(last.call).toMatchObject({
      kind: "call",
      id: JSON.parse(body).Id,
      attempt: "1",
      outcome: "accepted",
      summary: { notifications: 1, deliveries: 2, actions: ["OrderCreated"], keys: ["77"] },
      notifications: [{ i: 0, action: "OrderCreated", key: "77", routes: ["orders"], destinations: ["wms", "shop"] }],
      text: body,
    });
    expect(last.call!.deliveries!.map((d) => d.id).sort()).toEqual(
      sentMessages()
        .map((m) => m.deliveryId)
        .sort(),
    );
  });

  it("puts a call that matches nothing on record too", async () => {
    const body = envelope([{ Action: "CustomerCreated", Details: { CustomerNumber: "5" } }]);
    expect(await (await signedPost(body)).json()).toMatchObject({ deliveries: 0 });
    expect(sentRecords()).toEqual([
      expect.objectContaining({
        id: JSON.parse(body).Id,
        summary: expect.objectContaining({ deliveries: 0, keys: ["5"] }),
      }),
    ]);
  });
});

describe("POST /webhook remembers accepted calls", () => {
  it("answers 200 duplicate for an Id this isolate accepted, enqueues no delivery and records the sender's attempt", async () => {
    const body = envelope([{ Action: "OrderCreated", Details: { OrderType: "NormalOrder" } }]);
    expect((await signedPost(body)).status).toBe(202);
    expect(sendBatch).toHaveBeenCalledTimes(1);
    const send = vi.spyOn(env.DELIVERIES, "send");
    const again = await signedPost(body);
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ status: "duplicate", id: JSON.parse(body).Id });
    expect(sendBatch).toHaveBeenCalledTimes(1);
    expect(sentBodies<CallRecord>(send)).toEqual([
      expect.objectContaining({ kind: "call", id: JSON.parse(body).Id, attempt: "1", outcome: "duplicate" }),
    ]);
  });

  it("recognises a sender retry (Attempt 2) of a call the ledger holds, on any isolate and after a restart", async () => {
    const id = freshId();
    const notifications = [{ Action: "OrderCreated", Details: { OrderType: "NormalOrder" } }];
    const first = JSON.stringify({ Id: id, Attempt: 1, Properties: {}, Notifications: notifications });
    expect((await signedPost(first)).status).toBe(202);
    await vi.waitFor(async () => expect(await hasCall(env.LEDGER, id)).toBe(true), { timeout: 15_000, interval: 100 });
    resetRecentIds(); // as another isolate, or this one restarted, would be
    sendBatch.mockClear();
    const retry = JSON.stringify({ Id: id, Attempt: 2, Properties: {}, Notifications: notifications });
    const response = await signedPost(retry);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "duplicate", id });
    expect(sendBatch).not.toHaveBeenCalled();
  });

  it("never delivers a captured call again once it is on record, whatever its Attempt, and records each replay", async () => {
    const fetchSpy = vi.mocked(globalThis.fetch);
    const id = freshId();
    const body = JSON.stringify({
      Id: id,
      Attempt: 1,
      Properties: {},
      Notifications: [{ Action: "OrderCreated", Details: { OrderNumber: "9", OrderType: "NormalOrder" } }],
    });
    expect((await signedPost(body)).status).toBe(202);
    const delivered = async () => (await getCall(env.LEDGER, id))?.deliveries.every((d) => d.status === "delivered");
    await vi.waitFor(async () => expect(await delivered()).toBe(true), { timeout: 15_000, interval: 100 });
    const requests = fetchSpy.mock.calls.length;
    expect(requests).toBe(2); // wms and shop
    // The same bytes, captured and sent again after the isolate forgot them: the door takes them as it takes any
    // first attempt (it reads no storage for one), and the consumer recognises the call on record.
    for (let replay = 0; replay < 3; replay++) {
      resetRecentIds();
      expect((await signedPost(body)).status).toBe(202);
    }
    await vi.waitFor(async () => expect((await getCall(env.LEDGER, id))?.senderAttempts).toHaveLength(4), {
      timeout: 15_000,
      interval: 100,
    });
    expect(fetchSpy.mock.calls.length).toBe(requests);
    const trace = (await getCall(env.LEDGER, id))!;
    expect(trace.deliveries.map((d) => [d.status, d.attempts!.length])).toEqual([
      ["delivered", 1],
      ["delivered", 1],
    ]);
  });

  it("does not read the ledger for a first attempt: the sender cannot have sent it before", async () => {
    const prepare = vi.spyOn(env.LEDGER, "prepare");
    const first = JSON.stringify({ Id: freshId(), Attempt: 1, Properties: {}, Notifications: [] });
    expect((await signedPost(first)).status).toBe(202);
    expect(prepare).not.toHaveBeenCalled();
  });

  it("does not remember a call whose enqueue failed, so the sender's retry goes through", async () => {
    const body = envelope([{ Action: "OrderCreated", Details: { OrderType: "NormalOrder" } }]);
    sendBatch.mockRejectedValueOnce(new Error("Queue send failed: overloaded"));
    const failed = await signedPost(body);
    expect(failed.status).toBe(503);
    expect(await failed.json()).toMatchObject({ error: "queue_unavailable" });
    const retried = await signedPost(body);
    expect(retried.status).toBe(202);
  });

  it("enqueues the call's summary only after every other batch of a large call got in", async () => {
    await putRules({
      version: 1,
      destinations: { many: { url: "https://many.test/", mode: "single" } },
      routes: [{ name: "all", actions: ["*"], to: ["many"] }],
    });
    const notifications = Array.from({ length: 250 }, (_, i) => ({
      Action: "ProductChanged",
      Details: { ProductNumber: String(i) },
    }));
    const body = envelope(notifications);
    let calls = 0;
    sendBatch.mockImplementation(async () => {
      if (++calls === 2) throw new Error("Queue send failed");
    });
    expect((await signedPost(body)).status).toBe(503);
    // The summary (in the last batch) never went: the ledger cannot take the call as accepted.
    const batches = (sendBatch.mock.calls as [MessageSendRequest<string>[]][]).map(([batch]) => batch);
    const summaries = batches.flat().filter((m) => m.body.includes('"summary"'));
    expect(summaries).toEqual([]);
  });
});
