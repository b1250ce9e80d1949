import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { resetGateCache } from "../../src/gate/client.ts";
import { QUEUES } from "../../src/queues/names.ts";
import { consume, deliveryMessage, EXAMPLE_RULES, putRules } from "../helpers.ts";

/**
 * Metrics (docs/operations.md, "Metrics and traces"): one Analytics Engine data point per attempt, through the
 * METRICS binding (here a writer of the test's own: locally the binding keeps nothing), none without it.
 */
let points: { indexes: string[]; blobs: string[]; doubles: number[] }[];
const METRICS = { writeDataPoint: (point: (typeof points)[number]) => void points.push(point) };

beforeEach(async () => {
  resetGateCache();
  points = [];
  await putRules({
    ...EXAMPLE_RULES,
    destinations: { ...EXAMPLE_RULES.destinations, gone: { url: "https://gone.test/" } },
  });
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input) => {
    const url = new Request(input).url;
    return new Response(null, { status: url.includes("shop") ? 503 : url.includes("gone") ? 410 : 200 });
  });
});
afterEach(() => vi.restoreAllMocks());

describe("a data point per attempt", () => {
  it("names the destination, outcome, status and attempt, with the request's duration", async () => {
    const wms = deliveryMessage("wms");
    const shop = deliveryMessage("shop", { attempts: 2 });
    const gone = deliveryMessage("gone");
    await consume(QUEUES.deliveries, [wms, shop, gone], { env: { METRICS } });
    const byDestination = Object.fromEntries(points.map((p) => [p.blobs[0], p]));
    expect(byDestination.wms).toMatchObject({ indexes: ["wms"], blobs: ["wms", "delivered", "200", ""] });
    expect(byDestination.shop).toMatchObject({ indexes: ["shop"], blobs: ["shop", "retry", "503", ""] });
    expect(byDestination.gone).toMatchObject({ blobs: ["gone", "dead_letter", "410", "permanent_failure"] });
    expect(byDestination.wms!.doubles[1]).toBe(200);
    expect(byDestination.shop!.doubles[2]).toBe(3);
    for (const p of points) expect(p.doubles[0]).toBeGreaterThanOrEqual(0);
    expect(points).toHaveLength(3);
  });

  it("says `none` for an attempt that had no answer, and writes nothing without the binding", async () => {
    vi.mocked(fetch).mockRejectedValue(new TypeError("Network connection lost."));
    await consume(QUEUES.deliveries, [deliveryMessage("wms")], { env: { METRICS } });
    expect(points.map((p) => p.blobs.slice(1, 3))).toEqual([["retry", "none"]]);
    await consume(QUEUES.deliveries, [deliveryMessage("wms")], { env: { METRICS: undefined } });
    expect(points).toHaveLength(1);
  });
});
