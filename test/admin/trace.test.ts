import { env } from "cloudflare:workers";
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import type { DeliveryTrace } from "../../src/admin/trace.ts";
import type { CallSummary, CallTrace, Page, Stats } from "../../src/ledger/views.ts";
import { writeLedger } from "../../src/ledger/write.ts";
import {
  admin,
  clearLedger,
  EXAMPLE_RULES,
  eventually,
  expectError,
  FIXTURES,
  freshId,
  putRules,
  signedPost,
} from "../helpers.ts";

let delivered: Request[];
beforeAll(() => clearLedger());
beforeEach(async () => {
  await putRules(EXAMPLE_RULES);
  delivered = [];
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    delivered.push(request);
    // The shop fails twice, then takes it.
    const shopAttempt = Number(request.headers.get("x-relay-attempt"));
    return new Response(null, { status: request.url.includes("shop") && shopAttempt < 3 ? 503 : 200 });
  });
});
afterEach(() => vi.restoreAllMocks());

/** Sends the OrderCreated sample under a fresh Id and waits until the ledger shows both deliveries settled. */
async function sendOrder(): Promise<{ id: string; trace: CallTrace }> {
  const id = freshId();
  const body = FIXTURES["OrderCreated.json"]!.replace(/"Id":"[0-9a-f]+"/, `"Id":"${id}"`);
  expect((await signedPost(body)).status).toBe(202);
  const trace = await eventually(async () => {
    const response = await admin(`/calls/${id}`);
    expect(response.status).toBe(200);
    const found = await response.json<CallTrace>();
    expect(found.deliveries.map((d) => d.status)).toEqual(["delivered", "delivered"]);
    return found;
  }, 25_000);
  return { id, trace };
}

describe("the trace of a call", () => {
  it("shows its notifications, routes and every attempt of each delivery", async () => {
    const { id, trace } = await sendOrder();
    expect(trace).toMatchObject({
      id,
      senderAttempts: [1],
      notifications: [
        {
          index: 0,
          action: "OrderCreated",
          warehouse: null,
          key: "3339887",
          routes: ["orders"],
          destinations: ["wms", "shop"],
        },
      ],
    });
    const byDestination = Object.fromEntries(trace.deliveries.map((d) => [d.destination, d]));
    expect(byDestination.wms).toMatchObject({ deliveryId: `${id}.wms`, notifications: [0], attemptCount: 1 });
    expect(byDestination.wms!.attempts).toEqual([
      { attempt: 1, at: expect.any(String), status: 200, durationMs: expect.any(Number), outcome: "delivered" },
    ]);
    expect(byDestination.shop!.attempts!.map((a) => [a.attempt, a.status, a.outcome])).toEqual([
      [1, 503, "retry"],
      [2, 503, "retry"],
      [3, 200, "delivered"],
    ]);
  });

  it("is found by the order number, and by Action, destination and status", async () => {
    const { id } = await sendOrder();
    const byKey = await (await admin("/calls?key=3339887")).json<Page<CallSummary>>();
    expect(byKey.items.map((c) => c.id)).toContain(id);
    expect(byKey.items.find((c) => c.id === id)).toMatchObject({
      actions: ["OrderCreated"],
      keys: ["3339887"],
      deliveries: 2,
      status: "delivered",
    });
    const filtered = await (await admin("/calls?action=OrderCreated&destination=shop&status=delivered&limit=100")).json<
      Page<CallSummary>
    >();
    expect(filtered.items.map((c) => c.id)).toContain(id);
    const none = await (await admin("/calls?key=3339887&status=dead")).json<Page<CallSummary>>();
    expect(none.items.map((c) => c.id)).not.toContain(id);
  });

  it("answers 404 call_not_found for an Id it does not hold", async () => {
    await expectError(await admin("/calls/0000000000000000000000000000dead"), 404, "call_not_found");
  });
});

describe("a delivery", () => {
  it("shows its attempts and the body it sends, and is resent under the same delivery id with attempts afresh", async () => {
    const { id } = await sendOrder();
    const response = await admin(`/deliveries/${id}.wms`);
    const delivery = await response.json<DeliveryTrace>();
    expect(delivery).toMatchObject({ deliveryId: `${id}.wms`, status: "delivered", attemptCount: 1 });
    expect(delivery.body).toMatchObject({ Id: id, Attempt: 1, Notifications: [{ Action: "OrderCreated" }] });
    delivered = [];
    const resent = await admin(`/deliveries/${id}.wms/replay`, { method: "POST" });
    expect(resent.status).toBe(202);
    expect(await resent.json()).toEqual({ replayed: [`${id}.wms`], skipped: [] });
    await eventually(() => {
      const request = delivered.find((r) => r.headers.get("x-relay-delivery-id") === `${id}.wms`);
      expect(request?.headers.get("x-relay-attempt")).toBe("1");
    });
    const after = await eventually(async () => {
      const found = await (await admin(`/deliveries/${id}.wms`)).json<DeliveryTrace>();
      expect(found.attempts).toHaveLength(2);
      return found;
    });
    expect(after.attempts!.map((a) => [a.attempt, a.outcome, a.replay ?? false])).toEqual([
      [1, "delivered", false],
      [1, "delivered", true],
    ]);
  });

  it("that has not been attempted yet cannot be resent (409), and an unknown one is 404", async () => {
    const id = freshId();
    await writeLedger(env.LEDGER, env.PAYLOADS, [
      {
        kind: "call",
        v: 1,
        id,
        at: Date.now(),
        attempt: "1",
        outcome: "accepted",
        summary: { notifications: 1, deliveries: 1, actions: ["OrderCreated"], keys: [] },
        deliveries: [{ id: `${id}.wms`, destination: "wms", routes: ["orders"], indices: [0] }],
      },
    ]);
    expect(await (await admin(`/deliveries/${id}.wms`)).json()).toMatchObject({ status: "pending" });
    await expectError(await admin(`/deliveries/${id}.wms/replay`, { method: "POST" }), 409, "delivery_not_replayable");
    await expectError(await admin("/deliveries/nope.wms"), 404, "delivery_not_found");
  });

  it("lists by destination and status", async () => {
    const { id } = await sendOrder();
    const page = await (await admin("/deliveries?destination=shop&status=delivered&limit=100")).json<
      Page<{ deliveryId: string }>
    >();
    expect(page.items.map((d) => d.deliveryId)).toContain(`${id}.shop`);
  });
});

describe("stats", () => {
  it("count the last 24 hours by default, per destination and per Action", async () => {
    await sendOrder();
    const stats = await (await admin("/stats")).json<Stats>();
    expect(Date.now() - Date.parse(stats.since)).toBeGreaterThan(86_000_000);
    expect(stats.destinations.shop).toMatchObject({ delivered: expect.any(Number), p50Ms: expect.any(Number) });
    expect(stats.destinations.shop!.lastFailedAt).not.toBeNull();
    expect(stats.actions.OrderCreated).toBeGreaterThan(0);
  });
});

describe("query parameters", () => {
  it.each([
    ["/calls?limit=0", "limit"],
    ["/calls?limit=1000", "limit"],
    ["/calls?status=lost", "status"],
    ["/calls?since=yesterday", "since"],
    ["/calls?until=12/01/2026", "until"],
    ["/calls?cursor=abc", "cursor"],
    ["/calls?key=", "key"],
    [`/calls?key=${"x".repeat(201)}`, "key"],
    ["/deliveries?status=delivered-ish", "status"],
    ["/stats?since=soon", "since"],
  ])("%s → 400 invalid_query naming %s", async (path, parameter) => {
    const error = await expectError(await admin(path), 400, "invalid_query");
    expect(error).toMatchObject({ parameter });
    expect(error.message).toContain(parameter);
  });
});
