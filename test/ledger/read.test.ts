import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { listCalls } from "../../src/ledger/calls.ts";
import { listDeliveries } from "../../src/ledger/deliveries.ts";
import { decodeCursor } from "../../src/ledger/paging.ts";
import { stats } from "../../src/ledger/stats.ts";
import { writeLedger } from "../../src/ledger/write.ts";
import type { CallRecord } from "../../src/queues/call.ts";
import type { AttemptRecord, LedgerRecord } from "../../src/queues/ledger.ts";
import { clearLedger, deliveryMessage } from "../helpers.ts";

const HOUR = 3_600_000;
const T0 = Date.parse("2026-12-01T00:00:00Z");

/** A call at T0 + `hours` with one notification of `action`/`key` to each destination, each delivery at `outcome`. */
function call(
  id: string,
  hours: number,
  action: string,
  key: string | null,
  outcomes: Record<string, AttemptRecord["outcome"] | "pending">,
): LedgerRecord[] {
  const at = T0 + hours * HOUR;
  const destinations = Object.keys(outcomes);
  const record: CallRecord = {
    kind: "call",
    v: 1,
    id,
    at,
    attempt: "1",
    outcome: "accepted",
    summary: { notifications: 1, deliveries: destinations.length, actions: [action], keys: key === null ? [] : [key] },
    notifications: [{ i: 0, action, warehouse: null, key, routes: ["r"], destinations }],
    deliveries: destinations.map((d) => ({ id: `${id}.${d}`, destination: d, routes: ["r"], indices: [0] })),
  };
  const attempts = Object.entries(outcomes).flatMap(([destination, outcome]): AttemptRecord[] =>
    outcome === "pending"
      ? []
      : [
          {
            kind: "attempt",
            deliveryId: `${id}.${destination}`,
            destination,
            callId: id,
            routes: ["r"],
            indices: [0],
            receivedAt: at,
            run: 0,
            attempt: 1,
            at: at + 1000,
            status: outcome === "delivered" ? 200 : 503,
            durationMs: destination === "wms" ? 40 : 400,
            outcome,
            payload: JSON.stringify(deliveryMessage(destination)),
            ...(outcome === "dead_letter" && { dead: { reason: "permanent_failure", detail: "HTTP 410" } }),
          },
        ],
  );
  return [record, ...attempts];
}

beforeEach(async () => {
  await clearLedger();
  await writeLedger(env.LEDGER, env.PAYLOADS, [
    ...call("c1", 1, "OrderCreated", "3339977", { wms: "delivered", shop: "delivered" }),
    ...call("c2", 2, "OrderCreated", "3339978", { wms: "delivered", shop: "retry" }),
    ...call("c3", 3, "AvailableBalanceChanged", "SKU-1", { shop: "dead_letter" }),
    ...call("c4", 4, "CustomerCreated", "C-1", {}),
    ...call("c5", 5, "OrderCancelled", "3339977", { wms: "pending" }),
  ]);
});

const ids = (page: { items: { id: string }[] }) => page.items.map((i) => i.id);

describe("listing calls", () => {
  it("is newest first, each with its Actions, keys, deliveries and worst status", async () => {
    const page = await listCalls(env.LEDGER, { limit: 10 });
    expect(page.items).toEqual([
      {
        id: "c5",
        receivedAt: new Date(T0 + 5 * HOUR).toISOString(),
        actions: ["OrderCancelled"],
        keys: ["3339977"],
        deliveries: 1,
        status: "pending",
      },
      expect.objectContaining({ id: "c4", deliveries: 0, status: "no_deliveries" }),
      expect.objectContaining({ id: "c3", status: "dead" }),
      expect.objectContaining({ id: "c2", status: "retrying" }),
      expect.objectContaining({ id: "c1", status: "delivered" }),
    ]);
    expect(page.cursor).toBeUndefined();
  });

  it("finds an order by its number: where did order 3339977 go?", async () => {
    expect(ids(await listCalls(env.LEDGER, { key: "3339977", limit: 10 }))).toEqual(["c5", "c1"]);
  });

  it("filters by Action, destination, status and time, together", async () => {
    expect(ids(await listCalls(env.LEDGER, { action: "OrderCreated", limit: 10 }))).toEqual(["c2", "c1"]);
    expect(ids(await listCalls(env.LEDGER, { destination: "shop", limit: 10 }))).toEqual(["c3", "c2", "c1"]);
    expect(ids(await listCalls(env.LEDGER, { status: "dead", limit: 10 }))).toEqual(["c3"]);
    expect(ids(await listCalls(env.LEDGER, { status: "no_deliveries", limit: 10 }))).toEqual(["c4"]);
    expect(ids(await listCalls(env.LEDGER, { since: T0 + 2 * HOUR, until: T0 + 4 * HOUR, limit: 10 }))).toEqual([
      "c3",
      "c2",
    ]);
    expect(
      ids(await listCalls(env.LEDGER, { action: "OrderCreated", destination: "shop", status: "retrying", limit: 10 })),
    ).toEqual(["c2"]);
  });

  it("pages with a cursor, each call once", async () => {
    const first = await listCalls(env.LEDGER, { limit: 2 });
    expect(ids(first)).toEqual(["c5", "c4"]);
    const second = await listCalls(env.LEDGER, { limit: 2, cursor: decodeCursor(first.cursor!) });
    const third = await listCalls(env.LEDGER, { limit: 2, cursor: decodeCursor(second.cursor!) });
    expect([...ids(second), ...ids(third)]).toEqual(["c3", "c2", "c1"]);
    expect(third.cursor).toBeUndefined();
  });
});

describe("listing deliveries", () => {
  it("filters by destination and status, newest first", async () => {
    const shop = await listDeliveries(env.LEDGER, { destination: "shop", limit: 10 });
    expect(shop.items.map((d) => [d.deliveryId, d.status])).toEqual([
      ["c3.shop", "dead"],
      ["c2.shop", "retrying"],
      ["c1.shop", "delivered"],
    ]);
    const pending = await listDeliveries(env.LEDGER, { status: "pending", limit: 10 });
    expect(pending.items.map((d) => d.deliveryId)).toEqual(["c5.wms"]);
    expect(pending.items[0]).toMatchObject({ callId: "c5", notifications: [0], attemptCount: 0 });
  });
});

describe("stats", () => {
  it("counts deliveries by status per destination, with latency and last success and failure; calls per Action", async () => {
    const result = await stats(env.LEDGER, env.PAYLOADS, T0);
    expect(result.destinations).toEqual({
      wms: {
        delivered: 2,
        superseded: 0,
        retrying: 0,
        held: 0,
        dead: 0,
        pending: 1,
        p50Ms: 40,
        p95Ms: 40,
        lastDeliveredAt: new Date(T0 + 2 * HOUR + 1000).toISOString(),
        lastFailedAt: null,
      },
      shop: {
        delivered: 1,
        superseded: 0,
        retrying: 1,
        held: 0,
        dead: 1,
        pending: 0,
        p50Ms: 400,
        p95Ms: 400,
        lastDeliveredAt: new Date(T0 + HOUR + 1000).toISOString(),
        lastFailedAt: new Date(T0 + 3 * HOUR + 1000).toISOString(),
      },
    });
    expect(result.actions).toEqual({
      OrderCreated: 2,
      AvailableBalanceChanged: 1,
      CustomerCreated: 1,
      OrderCancelled: 1,
    });
    const later = await stats(env.LEDGER, env.PAYLOADS, T0 + 3 * HOUR);
    expect(later.destinations.shop).toMatchObject({ dead: 1, delivered: 0, retrying: 0 });
    expect(later.destinations.wms).toMatchObject({ pending: 1, delivered: 0, p50Ms: null, lastDeliveredAt: null });
    expect(later.actions).toEqual({ AvailableBalanceChanged: 1, CustomerCreated: 1, OrderCancelled: 1 });
  });

  it("takes p50 and p95 as nearest-rank percentiles of the attempts' durations", async () => {
    await clearLedger();
    const records = Array.from({ length: 20 }, (_, i) =>
      call(`p${i}`, 1, "OrderCreated", null, { erp: "delivered" }).map((r) =>
        r.kind === "attempt" ? { ...r, durationMs: i + 1 } : r,
      ),
    ).flat();
    await writeLedger(env.LEDGER, env.PAYLOADS, records);
    expect((await stats(env.LEDGER, env.PAYLOADS, T0)).destinations.erp).toMatchObject({
      delivered: 20,
      p50Ms: 10,
      p95Ms: 19,
    });
  });
});
