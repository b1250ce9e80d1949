/**
 * The ledger never drops a record (docs/ledger.md, "When D1 is down"), end to end: `wrangler dev` with a real
 * receiver, and D1 made to fail for half a minute the way an outage would (the test holds an exclusive lock on the
 * local database file, so every query of the relay's fails). Calls keep coming meanwhile; once D1 answers again,
 * every call, delivery and attempt is in the ledger, counted one by one, and each receiver request is there once.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CallSummary, CallTrace, Page, Stats } from "../../src/ledger/views.ts";
import { ok, type Receiver, startReceiver } from "./lib/receivers.ts";
import { envelope, freshId, type Relay, startRelay, waitFor } from "./lib/relay.ts";

const state = mkdtempSync(join(tmpdir(), "extend-relay-ledger-down-e2e-"));
let relay: Relay;
let wms: Receiver;

/** The relay's local D1 file, locked by this process: the relay's reads and writes fail until it is released. */
function lockLedger(): { release(): void } {
  const folder = join(state, "v3", "d1", "miniflare-D1DatabaseObject");
  const file = readdirSync(folder).find((name) => name.endsWith(".sqlite") && name !== "metadata.sqlite")!;
  const db = new DatabaseSync(join(folder, file));
  db.exec("PRAGMA busy_timeout = 0");
  db.exec("BEGIN EXCLUSIVE");
  return {
    release() {
      db.exec("ROLLBACK");
      db.close();
    },
  };
}

const order = (n: number) => ({ Action: "OrderCreated", Details: { OrderNumber: `D-${n}`, OrderType: "NormalOrder" } });

beforeAll(async () => {
  wms = await startReceiver("wms", ok);
  relay = await startRelay({ vars: {}, persistTo: state });
  const put = await relay.admin("/rules", {
    method: "PUT",
    body: JSON.stringify({
      version: 1,
      destinations: { wms: { url: wms.url } },
      routes: [{ name: "orders", actions: ["OrderCreated"], to: ["wms"] }],
    }),
  });
  expect(put.status).toBe(200);
}, 120_000);

afterAll(async () => {
  await relay?.stop();
  await wms?.stop();
  rmSync(state, { recursive: true, force: true });
});

describe("D1 failing for a while, then back", () => {
  it("leaves every record written, none lost", async () => {
    const ids: string[] = [];
    const send = async (n: number) => {
      const id = freshId();
      const response = await relay.send(envelope([order(n)], id));
      expect(response.status).toBe(202);
      ids.push(id);
    };
    for (let n = 0; n < 5; n++) await send(n);
    await waitFor("the first calls on record", async () => {
      const page = (await (await relay.admin("/calls?limit=100")).json()) as Page<CallSummary>;
      return page.items.length === 5 ? true : undefined;
    });

    // The outage: half a minute of calls while every query of the ledger fails.
    const lock = lockLedger();
    const failing = await relay.admin("/stats");
    expect(failing.status).toBe(500);
    const outageEnds = Date.now() + 30_000;
    for (let n = 5; Date.now() < outageEnds; n++) {
      await send(n);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    lock.release();

    // Every call reached the receiver once, during the outage too: the ledger never holds up a delivery.
    await waitFor("every delivery at the receiver", () => (wms.delivered().length >= ids.length ? true : undefined));
    // And every record is written once D1 answers: the ledger queue's retries (10 s doubling) bring them in.
    const traces = await waitFor(
      "every call, delivery and attempt in the ledger",
      async () => {
        const found = await Promise.all(
          ids.map(async (id) => {
            const response = await relay.admin(`/calls/${id}`);
            return response.status === 200 ? ((await response.json()) as CallTrace) : undefined;
          }),
        );
        return found.every((t) => t?.deliveries[0]?.status === "delivered") ? (found as CallTrace[]) : undefined;
      },
      { timeoutMs: 240_000, intervalMs: 2000 },
    );
    expect(traces).toHaveLength(ids.length);
    expect(ids.length).toBeGreaterThan(40);
    for (const trace of traces) {
      expect(trace.deliveries).toHaveLength(1);
      expect(trace.deliveries[0]!.attempts).toHaveLength(1);
    }
    const byDelivery = new Map<string, number>();
    for (const r of wms.requests) byDelivery.set(r.deliveryId!, (byDelivery.get(r.deliveryId!) ?? 0) + 1);
    expect([...byDelivery.values()].every((n) => n === 1)).toBe(true);
    expect(byDelivery.size).toBe(ids.length);
    const stats = (await (await relay.admin("/stats")).json()) as Stats;
    expect(stats.destinations.wms).toMatchObject({ delivered: ids.length });
    expect(stats.ledger.waiting).toBe(0);
  }, 360_000);
});
