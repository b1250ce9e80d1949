/**
 * Shaping deliveries on `wrangler dev` with real receivers (docs/rules.md, "Shaping deliveries"): a WMS with
 * `order: "key"` gets an order's second notification only after its first (503, then 200) while another order
 * flows; a shop with `coalesce` gets 15 balance changes of one product once, the latest, another warehouse's
 * apart, and orders never merged; a CRM with a JSONata `transform` gets its own JSON, signed; a failing
 * expression is a dead letter, a broken one is refused with 422.
 */
import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Behaviour, ok, type Receiver, startReceiver } from "./lib/receivers.ts";
import { envelope, type Relay, SECRETS, startRelay, waitFor } from "./lib/relay.ts";

let relay: Relay;
let wms: Receiver;
let shop: Receiver;
let crm: Receiver;

/** The WMS fails the first request for order K1's OrderCreated, and takes everything else. */
let failedK1 = false;
const wmsBehaviour: Behaviour = (request) => {
  const call = JSON.parse(request.body.toString()) as {
    Notifications: { Action: string; Details: { OrderNumber: string } }[];
  };
  const first = call.Notifications[0]!;
  if (!failedK1 && first.Action === "OrderCreated" && first.Details.OrderNumber === "K1") {
    failedK1 = true;
    return { status: 503, body: "busy" };
  }
  return { status: 200 };
};

const WINDOW_SECONDS = 3;
const TRANSFORM =
  '{"order": Details.OrderNumber, "customer": Details.CustomerNumber, "event": $action, "call": $callId}';

beforeAll(async () => {
  [wms, shop, crm] = await Promise.all([
    startReceiver("wms", wmsBehaviour),
    startReceiver("shop", ok),
    startReceiver("crm", ok),
  ]);
  relay = await startRelay({ vars: { RETRY_SCHEDULE: "2", RULES_CACHE_SECONDS: "0" } });
  const put = await relay.admin("/rules", {
    method: "PUT",
    body: JSON.stringify({
      version: 1,
      destinations: {
        wms: { url: wms.url, order: "key", signing: { scheme: "ms-signature", secret: "WMS_SECRET" } },
        shop: { url: shop.url, coalesce: { windowSeconds: WINDOW_SECONDS, actions: ["BalanceChanged"] } },
        crm: {
          url: crm.url,
          mode: "single",
          transform: TRANSFORM,
          signing: { scheme: "ms-signature", secret: "WMS_SECRET" },
        },
      },
      routes: [
        { name: "orders-wms", actions: ["OrderCreated", "OrderChanged"], where: { "Details.To": "wms" }, to: ["wms"] },
        { name: "stock", actions: ["BalanceChanged", "OrderCreated"], where: { "Details.To": "shop" }, to: ["shop"] },
        { name: "crm", actions: ["OrderCreated"], where: { "Details.To": "crm" }, to: ["crm"] },
      ],
    }),
  });
  expect(put.status).toBe(200);
}, 120_000);

afterAll(async () => {
  await relay?.stop();
  await Promise.all([wms?.stop(), shop?.stop(), crm?.stop()]);
});

const send = async (notifications: unknown[]) => {
  const body = envelope(notifications);
  expect((await relay.send(body)).status).toBe(202);
  return JSON.parse(body).Id as string;
};
const detailsOf = (receiver: Receiver) =>
  receiver.requests.flatMap((r) =>
    (JSON.parse(r.body.toString()) as { Notifications: { Details: unknown }[] }).Notifications.map((n) => n.Details),
  );

describe("order per business key", () => {
  it("holds K1's second notification until its first is delivered (503, then 200), while K2 flows", async () => {
    const k1 = await send([{ Action: "OrderCreated", Details: { OrderNumber: "K1", To: "wms" } }]);
    const k2 = await send([{ Action: "OrderCreated", Details: { OrderNumber: "K2", To: "wms" } }]);
    const k1b = await send([{ Action: "OrderChanged", Details: { OrderNumber: "K1", To: "wms" } }]);
    await waitFor("the WMS got all three", () => (wms.delivered().length === 3 ? true : undefined));
    const arrivals = wms.requests.map((r) => [r.deliveryId!.split(".")[0], r.attempt, r.answered]);
    // K1's first fails, K2 is not held up by it, K1's second comes only after K1's first succeeded.
    expect(arrivals.filter(([id]) => id !== k2)).toEqual([
      [k1, 1, 503],
      [k1, 2, 200],
      [k1b, 1, 200],
    ]);
    const k2At = wms.requests.find((r) => r.deliveryId!.startsWith(k2))!.at;
    const k1RetryAt = wms.requests.find((r) => r.deliveryId!.startsWith(k1) && r.attempt === 2)!.at;
    expect(k2At).toBeLessThan(k1RetryAt);
    await waitFor("the ledger has K1's second delivered", async () => {
      const trace = (await (await relay.admin(`/calls/${k1b}`)).json()) as { deliveries: { status: string }[] };
      return trace.deliveries[0]?.status === "delivered" ? true : undefined;
    });
  });
});

describe("coalescing", () => {
  it("sends 15 balance changes of one product once, the latest; another warehouse apart; orders never merged", async () => {
    const balance = (warehouse: string, value: number) => ({
      Action: "BalanceChanged",
      Details: { ProductNumber: "P-77", Warehouse: warehouse, Balance: value, To: "shop" },
    });
    const started = Date.now();
    const ids: string[] = [];
    for (let i = 1; i <= 15; i++) ids.push(await send([balance("YX", i)]));
    await send([balance("ZZ", 500)]);
    await send([{ Action: "OrderCreated", Details: { OrderNumber: "O-1", To: "shop" } }]);
    await send([{ Action: "OrderCreated", Details: { OrderNumber: "O-1", To: "shop" } }]);
    await waitFor("the shop got the coalesced balances and both orders", () =>
      shop.delivered().length >= 4 ? true : undefined,
    );
    await new Promise((resolve) => setTimeout(resolve, WINDOW_SECONDS * 1000));
    const bodies = detailsOf(shop) as {
      ProductNumber?: string;
      Warehouse?: string;
      Balance?: number;
      OrderNumber?: string;
    }[];
    expect(bodies.filter((d) => d.Warehouse === "YX")).toEqual([
      { ProductNumber: "P-77", Warehouse: "YX", Balance: 15, To: "shop" },
    ]);
    expect(bodies.filter((d) => d.Warehouse === "ZZ")).toEqual([
      { ProductNumber: "P-77", Warehouse: "ZZ", Balance: 500, To: "shop" },
    ]);
    expect(bodies.filter((d) => d.OrderNumber === "O-1")).toHaveLength(2);
    const balanceAt = shop.requests.find((r) => r.body.toString().includes('"Balance":15'))!.at;
    expect(balanceAt - started).toBeGreaterThanOrEqual(WINDOW_SECONDS * 1000 - 500);
    const latest = `${ids[14]}.shop.n0`;
    const first = (await (await relay.admin(`/deliveries/${ids[0]}.shop.n0`)).json()) as Record<string, unknown>;
    expect(first).toMatchObject({ status: "superseded", supersededBy: latest });
  });
});

describe("transform", () => {
  it("delivers a JSONata mapping, signed over the bytes sent", async () => {
    const id = await send([
      { Action: "OrderCreated", Details: { OrderNumber: "3339887", CustomerNumber: "C-9", To: "crm" } },
    ]);
    await waitFor("the CRM got the mapping", () => (crm.delivered().length === 1 ? true : undefined));
    const [request] = crm.requests;
    expect(JSON.parse(request!.body.toString())).toEqual({
      order: "3339887",
      customer: "C-9",
      event: "OrderCreated",
      call: id,
    });
    const expected = createHmac("sha256", SECRETS.WMS_SECRET).update(request!.body).digest("hex").toUpperCase();
    expect(request!.headers["ms-signature"]).toBe(`sha256=${expected}`);
  });

  it("makes a failing expression a dead letter transform_failed, and refuses a broken one with 422", async () => {
    const rules = (await (await relay.admin("/rules")).json()) as {
      destinations: Record<string, Record<string, unknown>>;
    };
    rules.destinations.crm!.transform = 'Details.OrderNumber = "BAD" ? $error("no BAD orders here") : Details';
    expect((await relay.admin("/rules", { method: "PUT", body: JSON.stringify(rules) })).status).toBe(200);
    const bad = await send([{ Action: "OrderCreated", Details: { OrderNumber: "BAD", To: "crm" } }]);
    const dead = await waitFor("the BAD order's dead letter", async () => {
      const response = await relay.admin(`/dead-letters/${bad}.crm.n0`);
      return response.status === 200 ? ((await response.json()) as Record<string, unknown>) : undefined;
    });
    expect(dead).toMatchObject({ reason: "transform_failed", detail: expect.stringContaining("no BAD orders here") });

    rules.destinations.crm!.transform = '{"order": Details.OrderNumber';
    const refused = await relay.admin("/rules", { method: "PUT", body: JSON.stringify(rules) });
    expect(refused.status).toBe(422);
    expect(await refused.json()).toMatchObject({
      issues: [{ path: "destinations.crm.transform", message: expect.stringMatching(/position \d+/) }],
    });
  });
});
