import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Env } from "../../src/env.ts";
import app from "../../src/index.ts";
import { resetRecentIds } from "../../src/ingress/dedupe.ts";
import { bodyOf, type DeliveryMessage } from "../../src/queues.ts";
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

const sentMessages = (): DeliveryMessage[] => sentBodies<DeliveryMessage>(sendBatch);

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

  it("accepts a call with no notifications and one that matches nothing, enqueuing nothing", async () => {
    for (const notifications of [[], [{ Action: "CustomerCreated", Details: { CustomerNumber: "1" } }]]) {
      const response = await signedPost(envelope(notifications));
      expect(await response.json()).toMatchObject({ status: "accepted", deliveries: 0 });
    }
    expect(sendBatch).not.toHaveBeenCalled();
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

describe("POST /webhook remembers accepted calls", () => {
  it("answers 200 duplicate for an Id it already accepted and enqueues nothing the second time", async () => {
    const body = envelope([{ Action: "OrderCreated", Details: { OrderType: "NormalOrder" } }]);
    expect((await signedPost(body)).status).toBe(202);
    expect(sendBatch).toHaveBeenCalledTimes(1);
    // The dedupe key is written after the answer (waitUntil); give it a moment.
    await vi.waitFor(async () => expect(await env.STATE.get(`seen:${JSON.parse(body).Id}`)).toBe("1"));
    const again = await signedPost(body);
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ status: "duplicate", id: JSON.parse(body).Id });
    expect(sendBatch).toHaveBeenCalledTimes(1);
  });

  it("recognises a sender retry (Attempt 2) of a call another isolate accepted, from STATE", async () => {
    const id = freshId();
    await env.STATE.put(`seen:${id}`, "1");
    const notifications = [{ Action: "OrderCreated", Details: { OrderType: "NormalOrder" } }];
    const retry = JSON.stringify({ Id: id, Attempt: 2, Properties: {}, Notifications: notifications });
    const response = await signedPost(retry);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "duplicate", id });
    expect(sendBatch).not.toHaveBeenCalled();
  });

  it("does not read STATE for a first attempt: the sender cannot have sent it before", async () => {
    const get = vi.spyOn(env.STATE, "get");
    const id = freshId();
    await env.STATE.put(`seen:${id}`, "1");
    const first = JSON.stringify({ Id: id, Attempt: 1, Properties: {}, Notifications: [] });
    expect((await signedPost(first)).status).toBe(202);
    expect(get).not.toHaveBeenCalledWith(`seen:${id}`);
    // Once accepted here, this isolate answers a resend itself, whatever its Attempt.
    expect(await (await signedPost(first)).json()).toEqual({ status: "duplicate", id });
    expect(get).not.toHaveBeenCalledWith(`seen:${id}`);
  });

  it("with DEDUP_TTL_SECONDS=0 remembers Ids in this isolate only: STATE is neither read nor written", async () => {
    const memoryOnly = { ...env, DEDUP_TTL_SECONDS: "0" } as Env;
    const call = async (body: string) => {
      const ctx = createExecutionContext();
      const response = await app.fetch!(
        new Request("https://relay.test/webhook", {
          method: "POST",
          body,
          headers: { "ms-signature": msSignature(body) },
        }) as never,
        memoryOnly,
        ctx,
      );
      await waitOnExecutionContext(ctx); // the background work is done when this returns
      return response;
    };
    const notifications = [{ Action: "OrderCreated", Details: { OrderType: "NormalOrder" } }];
    const id = freshId();
    const first = JSON.stringify({ Id: id, Attempt: 1, Properties: {}, Notifications: notifications });
    const put = vi.spyOn(env.STATE, "put");
    expect((await call(first)).status).toBe(202);
    expect(put).not.toHaveBeenCalled();
    put.mockRestore();
    expect(await (await call(first)).json()).toEqual({ status: "duplicate", id });

    // A retry that another isolate accepted (a STATE record from when the TTL was on) is not looked up.
    const other = freshId();
    await env.STATE.put(`seen:${other}`, "1");
    const get = vi.spyOn(env.STATE, "get");
    const retry = JSON.stringify({ Id: other, Attempt: 2, Properties: {}, Notifications: notifications });
    expect(await (await call(retry)).json()).toMatchObject({ status: "accepted", id: other });
    expect(get).not.toHaveBeenCalled();

    // Once this isolate forgets, the sender's retry is relayed again, under the same delivery ids.
    const firstIds = sentMessages()
      .filter((m) => m.deliveryId.startsWith(id))
      .map((m) => m.deliveryId);
    resetRecentIds();
    expect(
      (await call(JSON.stringify({ Id: id, Attempt: 2, Properties: {}, Notifications: notifications }))).status,
    ).toBe(202);
    const allIds = sentMessages()
      .filter((m) => m.deliveryId.startsWith(id))
      .map((m) => m.deliveryId);
    expect(firstIds.length).toBeGreaterThan(0);
    expect(allIds).toEqual([...firstIds, ...firstIds]);
  });

  it("does not remember a call whose enqueue failed, so the sender's retry goes through", async () => {
    const body = envelope([{ Action: "OrderCreated", Details: { OrderType: "NormalOrder" } }]);
    sendBatch.mockRejectedValueOnce(new Error("Queue send failed: overloaded"));
    const failed = await signedPost(body);
    expect(failed.status).toBe(503);
    expect(await failed.json()).toMatchObject({ error: "queue_unavailable" });
    expect(await env.STATE.get(`seen:${JSON.parse(body).Id}`)).toBeNull();
    const retried = await signedPost(body);
    expect(retried.status).toBe(202);
  });
});
