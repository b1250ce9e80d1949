/**
 * The ledger, end to end: `wrangler dev` with real receivers, and the trace API telling exactly what each
 * receiver saw: a delivered call, a flaky receiver (503, 503, 200), a dead one (410), a call that matched
 * nothing; a sender retry after the relay restarted; a resend under the same delivery id.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CallSummary, CallTrace, Page } from "../../src/ledger/views.ts";
import { failFirst, ok, type Receiver, startReceiver } from "./lib/receivers.ts";
import { envelope, freshId, type Relay, startRelay, waitFor } from "./lib/relay.ts";

const state = mkdtempSync(join(tmpdir(), "extend-relay-ledger-e2e-"));
const VARS = { RETRY_SCHEDULE: "1,1,1", RULES_CACHE_SECONDS: "0" };
let relay: Relay;
const receivers: Record<string, Receiver> = {};

const ORDER = { Action: "OrderCreated", Details: { OrderNumber: "3339977", OrderType: "NormalOrder" } };
const PRODUCT = { Action: "ProductCreated", Details: { ProductNumber: "SKU-77" } };
const CUSTOMER = { Action: "CustomerCreated", Details: { CustomerNumber: "C-77" } };
const ids = { order: freshId(), product: freshId(), customer: freshId() };

async function trace(id: string): Promise<CallTrace | undefined> {
  const response = await relay.admin(`/calls/${id}`);
  return response.status === 200 ? ((await response.json()) as CallTrace) : undefined;
}

/** The trace once every delivery reached a final status. */
function settled(id: string): Promise<CallTrace> {
  return waitFor(`the ledger to settle call ${id}`, async () => {
    const found = await trace(id);
    return found?.deliveries.every((d) => d.status === "delivered" || d.status === "dead") ? found : undefined;
  });
}

beforeAll(async () => {
  receivers.wms = await startReceiver("wms", ok);
  receivers.flaky = await startReceiver("flaky", failFirst(2, 503));
  receivers.gone = await startReceiver("gone", () => ({ status: 410 }));
  relay = await startRelay({ vars: VARS, persistTo: state });
  const put = await relay.admin("/rules", {
    method: "PUT",
    body: JSON.stringify({
      version: 1,
      destinations: {
        wms: { url: receivers.wms.url },
        flaky: { url: receivers.flaky.url, maxAttempts: 5 },
        gone: { url: receivers.gone.url },
      },
      routes: [
        { name: "orders", actions: ["OrderCreated"], to: ["wms", "flaky"] },
        { name: "products", actions: ["ProductCreated"], to: ["gone"] },
      ],
    }),
  });
  expect(put.status).toBe(200);
  for (const [name, notification] of [
    ["order", ORDER],
    ["product", PRODUCT],
    ["customer", CUSTOMER],
  ] as const) {
    expect((await relay.send(envelope([notification], ids[name]))).status).toBe(202);
  }
}, 120_000);

afterAll(async () => {
  await relay?.stop();
  await Promise.all(Object.values(receivers).map((r) => r.stop()));
  rmSync(state, { recursive: true, force: true });
});

describe("the ledger of a relay with real receivers", () => {
  it("traces a delivered call and a flaky receiver's 503, 503, 200 exactly as the receivers saw them", async () => {
    const order = await settled(ids.order);
    expect(order).toMatchObject({
      id: ids.order,
      senderAttempts: [1],
      notifications: [
        { index: 0, action: "OrderCreated", key: "3339977", routes: ["orders"], destinations: ["wms", "flaky"] },
      ],
    });
    const wms = order.deliveries.find((d) => d.destination === "wms")!;
    const flaky = order.deliveries.find((d) => d.destination === "flaky")!;
    expect(wms.attempts!.map((a) => [a.attempt, a.status, a.outcome])).toEqual([[1, 200, "delivered"]]);
    expect(flaky.attempts!.map((a) => [a.attempt, a.status, a.outcome])).toEqual([
      [1, 503, "retry"],
      [2, 503, "retry"],
      [3, 200, "delivered"],
    ]);
    // What the receivers saw, request by request.
    for (const [receiver, delivery] of [
      [receivers.wms!, wms],
      [receivers.flaky!, flaky],
    ] as const) {
      const seen = receiver.requests.filter((r) => r.deliveryId === delivery.deliveryId);
      expect(seen.map((r) => [r.attempt, r.answered])).toEqual(delivery.attempts!.map((a) => [a.attempt, a.status]));
    }
  });

  it("traces a 410 as a dead letter, and a call that matched nothing as a call without deliveries", async () => {
    const product = await settled(ids.product);
    expect(product.deliveries).toEqual([
      expect.objectContaining({
        destination: "gone",
        status: "dead",
        attemptCount: 1,
        lastStatus: 410,
        dead: expect.objectContaining({ reason: "permanent_failure" }),
        attempts: [expect.objectContaining({ attempt: 1, status: 410, outcome: "dead_letter" })],
      }),
    ]);
    expect(receivers.gone!.requests.filter((r) => r.deliveryId === `${ids.product}.gone`)).toHaveLength(1);
    const customer = await waitFor("the call that matched nothing", () => trace(ids.customer));
    expect(customer).toMatchObject({
      deliveries: [],
      notifications: [{ action: "CustomerCreated", key: "C-77", routes: [] }],
    });
    const byKey = (await (await relay.admin("/calls?key=C-77")).json()) as Page<CallSummary>;
    expect(byKey.items).toEqual([
      expect.objectContaining({ id: ids.customer, deliveries: 0, status: "no_deliveries" }),
    ]);
  });

  it("answers a sender retry after a restart as a duplicate, from the ledger, and records it", async () => {
    await settled(ids.order);
    await relay.stop();
    relay = await startRelay({ vars: VARS, persistTo: state });
    const before = receivers.wms!.requests.length;
    const retry = JSON.stringify({ ...JSON.parse(envelope([ORDER], ids.order)), Attempt: 2 });
    const response = await relay.send(retry);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "duplicate", id: ids.order });
    const recorded = await waitFor("the retry in the ledger", async () => {
      const found = await trace(ids.order);
      return found?.senderAttempts.length === 2 ? found : undefined;
    });
    expect(recorded.senderAttempts).toEqual([1, 2]);
    await new Promise((r) => setTimeout(r, 1500));
    expect(receivers.wms!.requests.length).toBe(before);
  });

  it("resends a delivery under the same delivery id, attempts afresh, shown as a replay", async () => {
    const deliveryId = `${ids.order}.wms`;
    const response = await relay.admin(`/deliveries/${deliveryId}/replay`, { method: "POST" });
    expect(response.status).toBe(202);
    const again = await waitFor("the resent delivery", () =>
      receivers.wms!.requests.find((r) => r.deliveryId === deliveryId && r.seen === 2),
    );
    expect(again.attempt).toBe(1);
    const resent = await waitFor("the resend in the ledger", async () => {
      const found = await trace(ids.order);
      const wms = found?.deliveries.find((d) => d.deliveryId === deliveryId);
      return wms?.attempts?.length === 2 ? wms : undefined;
    });
    expect(resent.attempts!.map((a) => [a.attempt, a.outcome, a.replay ?? false])).toEqual([
      [1, "delivered", false],
      [1, "delivered", true],
    ]);
  });
});
