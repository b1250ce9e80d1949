import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { resetGateCache } from "../../src/gate/client.ts";
import { getDelivery } from "../../src/ledger/deliveries.ts";
import type { Delivery } from "../../src/queues/delivery.ts";
import { QUEUES } from "../../src/queues/names.ts";
import {
  admin,
  consume,
  deliveryMessage,
  EXAMPLE_RULES,
  envelope,
  eventually,
  freshId,
  putRules,
  signedPost,
} from "../helpers.ts";

/**
 * Shaped deliveries on workerd (docs/rules.md, "Shaping deliveries"): the DELIVERIES consumer hands every delivery
 * of an ordered or coalescing destination to its gate, which sends a key's deliveries one at a time in the order the
 * relay accepted them and only the latest of a coalesced burst; and a transform shapes what a receiver gets.
 */

let n = 0;
const fresh = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${n++}`;

interface Seen {
  url: string;
  deliveryId: string | null;
  attempt: string | null;
  body: string;
  signature: string | null;
}
let seen: Seen[];
let answer: (request: Request, body: string) => Response;

beforeEach(() => {
  resetGateCache();
  seen = [];
  answer = () => new Response("ok");
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    const body = await request.clone().text();
    seen.push({
      url: request.url,
      deliveryId: request.headers.get("x-relay-delivery-id"),
      attempt: request.headers.get("x-relay-attempt"),
      body,
      signature: request.headers.get("ms-signature"),
    });
    return answer(request, body);
  });
});
afterEach(() => vi.restoreAllMocks());

const to = (url: string) => seen.filter((s) => s.url === url);
const deliver = (messages: unknown[]) => consume(QUEUES.deliveries, messages);
const T = Date.parse("2026-12-07T09:00:00Z");

/** A delivery of one notification (an order or a stock balance) as the planner makes it for a shaped destination. */
function one(
  destination: string,
  details: Record<string, unknown>,
  action: string,
  at: number,
  shaping: Partial<Delivery>,
) {
  const call = JSON.stringify({
    Id: freshId(),
    Attempt: 1,
    Properties: { NotificationId: "n" },
    Notifications: [{ Action: action, Details: details }],
  });
  return deliveryMessage(destination, { receivedAt: at, indices: [0], ...shaping }, call);
}

describe("order per business key", () => {
  it("holds an order's second notification while its first retries, lets other orders flow, then sends it after the first", async () => {
    const name = fresh("wms");
    const url = `https://${name}.test/`;
    await putRules({
      ...EXAMPLE_RULES,
      destinations: { ...EXAMPLE_RULES.destinations, [name]: { url, order: "key", maxAttempts: 3 } },
    });
    const k1a = one(name, { OrderNumber: "K1" }, "OrderCreated", T, { keys: ["K1"] });
    const k2 = one(name, { OrderNumber: "K2" }, "OrderCreated", T + 1, { keys: ["K2"] });
    const k1b = one(name, { OrderNumber: "K1" }, "OrderChanged", T + 2, { keys: ["K1"] });
    answer = (request) =>
      request.headers.get("x-relay-delivery-id") === k1a.deliveryId
        ? new Response("busy", { status: 503 })
        : new Response("ok");

    // Queues hands them over out of order: the gate still decides them in the order the relay accepted them.
    const first = await deliver([k1b, k2, k1a]);
    expect(
      to(url)
        .map((s) => s.deliveryId)
        .sort(),
    ).toEqual([k1a.deliveryId, k2.deliveryId].sort());
    expect(first.requeued.map((r) => [r.body.deliveryId, r.body.attempts])).toEqual([[k1a.deliveryId, 1]]);
    await eventually(async () =>
      expect(await getDelivery(env.LEDGER, env.PAYLOADS, k1b.deliveryId)).toMatchObject({
        status: "held",
        held: { reason: "ordered", waitsFor: k1a.deliveryId },
      }),
    );

    // The first's retry succeeds: only then does the second go.
    answer = () => new Response("ok");
    await deliver([first.requeued[0]!.body]);
    await eventually(() => expect(to(url).map((s) => s.deliveryId)).toContain(k1b.deliveryId));
    const k1Order = to(url)
      .filter((s) => s.deliveryId !== k2.deliveryId)
      .map((s) => [s.deliveryId, s.attempt]);
    expect(k1Order).toEqual([
      [k1a.deliveryId, "1"],
      [k1a.deliveryId, "2"],
      [k1b.deliveryId, "1"],
    ]);
    await eventually(async () =>
      expect(await getDelivery(env.LEDGER, env.PAYLOADS, k1b.deliveryId)).toMatchObject({ status: "delivered" }),
    );
  });

  it("releases the next when the one it waits for becomes a dead letter", async () => {
    const name = fresh("wms");
    const url = `https://${name}.test/`;
    await putRules({
      ...EXAMPLE_RULES,
      destinations: { ...EXAMPLE_RULES.destinations, [name]: { url, order: "key", maxAttempts: 1 } },
    });
    const a = one(name, { OrderNumber: "K7" }, "OrderCreated", T, { keys: ["K7"] });
    const b = one(name, { OrderNumber: "K7" }, "OrderChanged", T + 1, { keys: ["K7"] });
    answer = (request) =>
      request.headers.get("x-relay-delivery-id") === a.deliveryId
        ? new Response("gone", { status: 410 })
        : new Response("ok");
    await deliver([a, b]);
    await eventually(() => expect(to(url).map((s) => s.deliveryId)).toEqual([a.deliveryId, b.deliveryId]));
  });
});

describe("coalescing", () => {
  it("sends one product's balance storm once, the latest, when the first one's window ends; another warehouse apart", async () => {
    const name = fresh("shop");
    const url = `https://${name}.test/`;
    // Coalesced by the route that sends stock to this destination.
    await putRules({
      ...EXAMPLE_RULES,
      destinations: { ...EXAMPLE_RULES.destinations, [name]: { url } },
      routes: [
        ...EXAMPLE_RULES.routes,
        {
          name: `stock-${name}`,
          actions: ["BalanceChanged"],
          to: [name],
          coalesce: { windowSeconds: 4, actions: ["Balance*"] },
        },
      ],
    });
    const balance = (warehouse: string, value: number) => ({
      Action: "BalanceChanged",
      Details: { ProductNumber: "P-1", Warehouse: warehouse, Balance: value },
    });
    const calls = [0, 1, 2, 3, 4, 5].map(() => freshId());
    const opened = Date.now();
    // Two calls at once, the second with the other warehouse too; then the rest, one by one.
    for (const [k, id] of calls.entries()) {
      const notifications = k === 1 ? [balance("YX", k), balance("ZZ", 99)] : [balance("YX", k)];
      expect((await signedPost(envelope(notifications, id))).status).toBe(202);
    }
    await eventually(() => expect(to(url)).toHaveLength(2), 15_000);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(to(url)).toHaveLength(2);
    expect(Date.now() - opened).toBeGreaterThanOrEqual(4000);
    const details = to(url).map((s) => JSON.parse(s.body).Notifications[0].Details);
    expect(details).toEqual(
      expect.arrayContaining([
        { ProductNumber: "P-1", Warehouse: "YX", Balance: 5 },
        { ProductNumber: "P-1", Warehouse: "ZZ", Balance: 99 },
      ]),
    );
    // Every older state names the delivery that carried the newer one: the one that was sent.
    const latest = `${calls[5]}.${name}.n0`;
    await eventually(async () => {
      for (const older of calls.slice(0, 5)) {
        expect(await getDelivery(env.LEDGER, env.PAYLOADS, `${older}.${name}.n0`)).toMatchObject({
          status: "superseded",
          supersededBy: latest,
        });
      }
      expect(await getDelivery(env.LEDGER, env.PAYLOADS, latest)).toMatchObject({ status: "delivered" });
      expect(await getDelivery(env.LEDGER, env.PAYLOADS, `${calls[1]}.${name}.n1`)).toMatchObject({
        status: "delivered",
      });
    });
    const stats = await (await admin("/stats?since=2026-01-01T00:00:00Z")).json<{
      destinations: Record<string, { superseded: number; delivered: number }>;
    }>();
    expect(stats.destinations[name]).toMatchObject({ superseded: 5, delivered: 2 });
    const trace = await (await admin(`/calls/${calls[0]}`)).json<{ deliveries: { destination: string }[] }>();
    expect(trace.deliveries.find((d) => d.destination === name)).toMatchObject({
      status: "superseded",
      supersededBy: latest,
    });

    // Resending a superseded one sends the latest state, as a replay (not coalesced again).
    const replay = await admin(`/deliveries/${calls[0]}.${name}.n0/replay`, { method: "POST" });
    expect(replay.status).toBe(202);
    expect(await replay.json()).toMatchObject({ replayed: [latest] });
    await eventually(() => expect(to(url)).toHaveLength(3));
    expect(to(url)[2]).toMatchObject({ deliveryId: latest, attempt: "1" });
    expect(JSON.parse(to(url)[2]!.body).Notifications[0].Details.Balance).toBe(5);
  });
});

describe("transform", () => {
  it("delivers what the expression makes of the notification, signed over the bytes sent", async () => {
    const name = fresh("crm");
    // WMS_SECRET may go to wms.test only (SECRET_HOSTS).
    const url = `https://wms.test/${name}`;
    const expression =
      '{"order": Details.OrderNumber, "what": $action, "to": $destination, "call": $callId, "at": $receivedAt}';
    // Saved through the admin API, so that the rules history numbers the version that shaped the body.
    const saved = await admin("/rules", {
      method: "PUT",
      body: JSON.stringify({
        ...EXAMPLE_RULES,
        destinations: {
          ...EXAMPLE_RULES.destinations,
          [name]: {
            url,
            mode: "single",
            transform: expression,
            signing: { scheme: "ms-signature", secret: "WMS_SECRET" },
          },
        },
      }),
    });
    expect(saved.status).toBe(200);
    const { version } = await saved.json<{ version: number }>();
    const order = one(name, { OrderNumber: "3339887" }, "OrderCreated", T, {});
    await deliver([order]);
    const [sent] = to(url);
    expect(JSON.parse(sent!.body)).toEqual({
      order: "3339887",
      what: "OrderCreated",
      to: name,
      call: order.callId,
      at: new Date(T).toISOString(),
    });
    const key = await crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode(env.WMS_SECRET as string),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(sent!.body)));
    expect(sent!.signature).toBe(
      `sha256=${[...mac]
        .map((b) => b.toString(16).padStart(2, "0"))
        .join("")
        .toUpperCase()}`,
    );
    await eventually(async () => {
      const view = await getDelivery(env.LEDGER, env.PAYLOADS, order.deliveryId);
      expect(view?.attempts?.[0]).toMatchObject({ outcome: "delivered" });
      expect(view?.attempts?.[0]?.rules).toBe(version);
    });
  });

  it("makes a delivery whose expression fails a dead letter transform_failed with JSONata's message, at once; others go", async () => {
    const name = fresh("crm");
    const url = `https://${name}.test/`;
    await putRules({
      ...EXAMPLE_RULES,
      destinations: {
        ...EXAMPLE_RULES.destinations,
        [name]: { url, mode: "single", transform: 'Details.OrderNumber = "BAD" ? $error("no bad orders") : Details' },
      },
    });
    const bad = one(name, { OrderNumber: "BAD" }, "OrderCreated", T, {});
    const good = one(name, { OrderNumber: "GOOD" }, "OrderCreated", T, {});
    const result = await deliver([bad, good]);
    expect(result.requeued).toEqual([]);
    expect(to(url).map((s) => JSON.parse(s.body))).toEqual([{ OrderNumber: "GOOD" }]);
    await eventually(async () =>
      expect(await getDelivery(env.LEDGER, env.PAYLOADS, bad.deliveryId)).toMatchObject({
        status: "dead",
        dead: { reason: "transform_failed", detail: expect.stringContaining("no bad orders") },
      }),
    );
  });

  it("refuses rules whose expression does not compile: 422 at its path, with JSONata's position", async () => {
    const response = await admin("/rules", {
      method: "PUT",
      body: JSON.stringify({
        ...EXAMPLE_RULES,
        destinations: {
          ...EXAMPLE_RULES.destinations,
          crm: { url: "https://crm.test/", mode: "single", transform: '{"a": ' },
        },
      }),
    });
    expect(response.status).toBe(422);
    const body = await response.json<{ issues: { path: string; message: string }[] }>();
    expect(body.issues).toEqual([
      {
        path: "destinations.crm.transform",
        message: expect.stringMatching(/does not compile: .* \(JSONata S0\d+ at position \d+\)/),
      },
    ]);
  });

  it("refuses a transform on a destination in envelope mode", async () => {
    const response = await admin("/rules", {
      method: "PUT",
      body: JSON.stringify({
        ...EXAMPLE_RULES,
        destinations: { ...EXAMPLE_RULES.destinations, crm: { url: "https://crm.test/", transform: "Details" } },
      }),
    });
    expect(response.status).toBe(422);
    expect((await response.json<{ issues: { path: string }[] }>()).issues.map((i) => i.path)).toEqual([
      "destinations.crm.mode",
    ]);
  });
});
