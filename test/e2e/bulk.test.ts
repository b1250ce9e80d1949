/**
 * A bulk replay on `wrangler dev` (docs/console.md, "Bulk actions"): 2,000 deliveries to a receiver that refuses
 * them for good (410) become dead letters; the receiver is fixed; one POST /admin/deliveries/replay with a filter
 * starts a job that replays them in chunks through the JOBS queue; every one arrives, and the ledger holds each as
 * delivered with no dead letter left.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Receiver, startReceiver } from "./lib/receivers.ts";
import { envelope, type Relay, startRelay, waitFor } from "./lib/relay.ts";

const DELIVERIES = 2000;
const PER_CALL = 100;

let relay: Relay;
let erp: Receiver;
let fixed = false;

beforeAll(async () => {
  erp = await startReceiver("erp", () => (fixed ? { status: 200 } : { status: 410, body: "gone" }));
  relay = await startRelay({ vars: { RULES_CACHE_SECONDS: "1" } });
  const put = await relay.admin("/rules", {
    method: "PUT",
    body: JSON.stringify({
      version: 1,
      // No circuit breaker: it would pause the destination after 20 refusals and hold the rest.
      destinations: { erp: { url: erp.url, mode: "single", maxAttempts: 1, circuit: false } },
      routes: [{ name: "products", actions: ["ProductChanged"], to: ["erp"] }],
    }),
  });
  expect(put.status).toBe(200);
}, 120_000);

afterAll(async () => {
  await relay?.stop();
  await erp?.stop();
});

const count = async (status: string) =>
  ((await (await relay.admin(`/deliveries/count?destination=erp&status=${status}`)).json()) as { count: number }).count;

describe("a bulk replay of 2,000 dead letters", () => {
  it("replays every one once its receiver is fixed, each accounted for", async () => {
    for (let c = 0; c < DELIVERIES / PER_CALL; c++) {
      const notifications = Array.from({ length: PER_CALL }, (_, i) => ({
        Action: "ProductChanged",
        Details: { ProductNumber: `P-${c}-${i}` },
      }));
      expect((await relay.send(envelope(notifications))).status).toBe(202);
    }
    await waitFor("2,000 dead letters", async () => ((await count("dead")) === DELIVERIES ? true : undefined), {
      timeoutMs: 300_000,
      intervalMs: 1000,
    });
    const refused = new Set(erp.requests.map((r) => r.deliveryId));
    expect(refused.size).toBe(DELIVERIES);

    fixed = true;
    const started = await relay.admin("/deliveries/replay", {
      method: "POST",
      body: JSON.stringify({ destination: "erp", status: "dead" }),
    });
    expect(started.status).toBe(202);
    const job = (await started.json()) as { id: number; total: number };
    expect(job.total).toBe(DELIVERIES);
    const done = await waitFor(
      "the job to finish",
      async () => {
        const now = (await (await relay.admin(`/jobs/${job.id}`)).json()) as { state: string; done: number };
        return now.state === "running" ? undefined : now;
      },
      { timeoutMs: 300_000, intervalMs: 1000 },
    );
    expect(done).toMatchObject({ state: "done", done: DELIVERIES, skipped: 0 });

    await waitFor(
      "every replayed delivery to arrive",
      () => (new Set(erp.delivered().map((r) => r.deliveryId)).size === DELIVERIES ? true : undefined),
      { timeoutMs: 300_000, intervalMs: 1000 },
    );
    const delivered = new Set(erp.delivered().map((r) => r.deliveryId));
    expect([...refused].filter((id) => !delivered.has(id))).toEqual([]);
    // Each once: a replay is one request per delivery (the receiver answered every one 200).
    expect(erp.delivered()).toHaveLength(DELIVERIES);
    await waitFor("the ledger to show them delivered", async () =>
      (await count("delivered")) === DELIVERIES && (await count("dead")) === 0 ? true : undefined,
    );
    const activity = (await (await relay.admin("/activity?action=deliveries.bulk_replay")).json()) as {
      items: { target: string; detail: { count: number } }[];
    };
    expect(activity.items[0]).toMatchObject({ target: "erp", detail: { count: DELIVERIES } });
  }, 600_000);
});
