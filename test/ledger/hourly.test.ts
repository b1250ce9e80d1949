import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { hourly, quantileOf } from "../../src/ledger/hourly.ts";
import { pruneLedger } from "../../src/ledger/retention.ts";
import { writeLedger } from "../../src/ledger/write.ts";
import type { AttemptRecord } from "../../src/queues/ledger.ts";
import { clearLedger } from "../helpers.ts";

/**
 * Hourly figures per destination (docs/ledger.md, "Hourly figures"): what the console draws. Counted as attempts are
 * written, once each however often they are written, with a latency histogram for the p95.
 */
const HOUR = 3_600_000;
const T = Date.parse("2026-12-07T08:00:00Z");

let n = 0;
function attempt(
  destination: string,
  at: number,
  outcome: AttemptRecord["outcome"],
  durationMs?: number,
): AttemptRecord {
  const callId = `hourly${(n++).toString(16).padStart(26, "0")}`;
  return {
    kind: "attempt",
    deliveryId: `${callId}.${destination}`,
    destination,
    callId,
    routes: ["r"],
    indices: [0],
    receivedAt: at,
    run: 0,
    attempt: 1,
    at,
    ...(durationMs !== undefined && { durationMs, status: outcome === "delivered" ? 200 : 503 }),
    outcome,
  };
}

beforeEach(clearLedger);

describe("hourly figures", () => {
  it("count each hour's delivered, retried and dead attempts per destination, with every hour present", async () => {
    const records = [
      ...Array.from({ length: 19 }, (_, i) => attempt("wms", T + i * 1000, "delivered", 40)),
      attempt("wms", T + 5000, "delivered", 900),
      attempt("wms", T + 6000, "retry", 30_000),
      attempt("wms", T + 2 * HOUR + 1, "dead_letter"),
      attempt("shop", T + HOUR, "delivered", 15),
    ];
    await writeLedger(env.LEDGER, env.PAYLOADS, records);
    // Written again (a retried ledger message): counted once.
    await writeLedger(env.LEDGER, env.PAYLOADS, records.slice(0, 5));
    const figures = await hourly(env.LEDGER, { since: T, until: T + 2 * HOUR, destinations: ["wms", "shop", "erp"] });
    expect(figures.wms).toEqual([
      { hour: "2026-12-07T08:00:00.000Z", delivered: 20, retried: 1, dead: 0, p95Ms: 1000 },
      { hour: "2026-12-07T09:00:00.000Z", delivered: 0, retried: 0, dead: 0, p95Ms: null },
      { hour: "2026-12-07T10:00:00.000Z", delivered: 0, retried: 0, dead: 1, p95Ms: null },
    ]);
    expect(figures.shop!.map((h) => h.delivered)).toEqual([0, 1, 0]);
    expect(figures.shop![1]!.p95Ms).toBe(20);
    expect(figures.erp!.every((h) => h.delivered === 0)).toBe(true);
    // Without a list: the destinations that have figures.
    expect(Object.keys(await hourly(env.LEDGER, { since: T, until: T + 2 * HOUR })).sort()).toEqual(["shop", "wms"]);
  });

  it("read the p95 off the latency buckets: the bound of the bucket holding it", () => {
    expect(quantileOf([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0.95)).toBeNull();
    // 19 fast (≤ 50 ms) and one slow (≤ 1 s): the 95th of 20 is the 19th, fast.
    expect(quantileOf([0, 0, 19, 0, 0, 0, 1, 0, 0, 0, 0, 0], 0.95)).toBe(50);
    expect(quantileOf([0, 0, 18, 0, 0, 0, 2, 0, 0, 0, 0, 0], 0.95)).toBe(1000);
    expect(quantileOf([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3], 0.5)).toBe(30_000);
  });

  it("are kept at least 8 days whatever the retention, then removed", async () => {
    const now = T + 10 * 24 * HOUR;
    await writeLedger(env.LEDGER, env.PAYLOADS, [
      attempt("wms", now - 9 * 24 * HOUR, "delivered", 5),
      attempt("wms", now - 7 * 24 * HOUR, "delivered", 5),
    ]);
    await pruneLedger(env.LEDGER, env.PAYLOADS, { retentionDays: 1, deadLetterTtlSeconds: 86_400, now });
    const left = await hourly(env.LEDGER, { since: now - 10 * 24 * HOUR, until: now, destinations: ["wms"] });
    expect(left.wms!.reduce((sum, h) => sum + h.delivered, 0)).toBe(1);
  });
});
