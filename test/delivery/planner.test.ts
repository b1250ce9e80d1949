import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { planCall, planCallRecord, planMessages, route } from "../../src/delivery/planner.ts";
import { parseCall } from "../../src/extend/envelope.ts";
import { decodeMessage } from "../../src/queues/codec.ts";
import { readDeliveriesMessage } from "../../src/queues/delivery.ts";
import { BATCH_BUDGET, BATCH_MESSAGES, MESSAGE_BUDGET, utf8Length } from "../../src/queues/limits.ts";
import { compileRules } from "../../src/rules/matcher.ts";
import { rulesSchema } from "../../src/rules/schema.ts";
import { EXAMPLE_RULES, envelope, FIXTURES, putRules, requestBody, signedPost } from "../helpers.ts";

beforeEach(() => {
  vi.spyOn(globalThis, "fetch").mockResolvedValue(new Response("ok"));
});
afterEach(() => vi.restoreAllMocks());

const utf8 = (text: string) => new TextEncoder().encode(text).byteLength;

describe("the call's record riding on its last delivery", () => {
  it.each(["OrderCreated.json", "unicode.json", "multi-indented-crlf.json"])(
    "is exactly JSON.stringify of the message with the record, its size counted to the byte (%s)",
    (name) => {
      const compiled = compileRules(EXAMPLE_RULES as never);
      const call = parseCall(new TextEncoder().encode(FIXTURES[name]!));
      const routing = route(compiled, call.envelope.Notifications);
      const deliveries = planMessages(call, routing.fanouts, compiled, 1_000);
      const [record] = planCallRecord(call, routing, deliveries, 1_000, { inline: true })!;
      const planned = planCall(call, routing, deliveries, 1_000, { inline: true })!;
      if (deliveries.length === 0) {
        expect(planned.map((p) => p.body)).toEqual([record!.body]);
        return;
      }
      expect(planned).toHaveLength(deliveries.length);
      const last = planned.at(-1)!;
      expect(last.body).toEqual({ delivery: deliveries.at(-1)!.body, call: record!.body });
      expect(last.text).toBe(JSON.stringify(last.body));
      expect(last.bytes).toBe(utf8(last.text));
    },
  );
});

describe("planning a large call", () => {
  it("splits 250 notifications to three destinations into messages and batches within Queues' limits, in order", async () => {
    await putRules({
      version: 1,
      destinations: {
        a: { url: "https://a.test/" },
        b: { url: "https://b.test/" },
        c: { url: "https://c.test/", mode: "single" },
      },
      routes: [{ name: "everything", actions: ["*"], to: ["a", "b", "c"] }],
    });
    const sendBatch = vi.spyOn(env.DELIVERIES, "sendBatch");
    // ~1.6 KB each with multi-byte text: 400 KB per destination, more than three messages' worth.
    const notifications = Array.from({ length: 250 }, (_, i) => ({
      Action: "ProductChanged",
      Details: { ProductNumber: String(i), Text: "Åsa-€-".repeat(200) },
    }));
    const body = envelope(notifications);
    const id = JSON.parse(body).Id as string;
    const response = await signedPost(body);
    expect(response.status).toBe(202);
    const result = await response.json<{ deliveries: number }>();

    const batches = sendBatch.mock.calls.map(([batch]) => [...batch] as MessageSendRequest<string>[]);
    const texts = batches.flat().map((m) => m.body);
    // The call's record travels with them, beside the last delivery or in messages of its own.
    const messages = texts.flatMap((text) => readDeliveriesMessage(decodeMessage(text)).delivery ?? []);
    expect(result.deliveries).toBe(messages.length);
    expect(batches.length).toBeGreaterThan(3);
    for (const batch of batches) {
      expect(batch.length).toBeLessThanOrEqual(BATCH_MESSAGES);
      expect(batch.reduce((sum, m) => sum + utf8(m.body) + 100, 0)).toBeLessThanOrEqual(BATCH_BUDGET);
    }
    for (const text of texts) expect(utf8(text)).toBeLessThanOrEqual(MESSAGE_BUDGET);

    // Every destination receives every notification exactly once, in the sender's order.
    for (const destination of ["a", "b", "c"]) {
      const mine = messages.filter((m) => m.destination === destination);
      const received = mine.flatMap((m) => requestBody(m).Notifications.map((n) => n.Details.ProductNumber));
      expect(received).toEqual(notifications.map((n) => n.Details.ProductNumber));
      expect(new Set(mine.map((m) => m.deliveryId)).size).toBe(mine.length);
    }
    const partsOfA = messages.filter((m) => m.destination === "a");
    expect(partsOfA.length).toBeGreaterThan(2);
    expect(partsOfA.map((m) => m.deliveryId)).toEqual(partsOfA.map((_, k) => `${id}.a.p${k + 1}`));
    expect(partsOfA.map((m) => m.part)).toEqual(partsOfA.map((_, k) => [k + 1, partsOfA.length]));
    const singles = messages.filter((m) => m.destination === "c");
    expect(singles).toHaveLength(250);
    expect(singles[7]!.deliveryId).toBe(`${id}.c.n7`);
  });
});

describe("utf8Length", () => {
  it.each(["", "abc", "Åsa", "€", "😀", "a\ud800b", "\udc00"])("agrees with TextEncoder for %j", (text) => {
    expect(utf8Length(text)).toBe(new TextEncoder().encode(text).byteLength);
  });
});

describe('planning shaped deliveries (docs/rules.md, "Shaping deliveries")', () => {
  const rules = compileRules(
    rulesSchema.parse({
      version: 1,
      destinations: {
        wms: { url: "https://wms.test/", order: "key" },
        shop: { url: "https://shop.test/", coalesce: { windowSeconds: 10, actions: ["BalanceChanged"] } },
        erp: { url: "https://erp.test/" },
      },
      routes: [
        { name: "orders", actions: ["Order*"], to: ["wms", "erp"] },
        { name: "stock", actions: ["BalanceChanged", "AvailableBalanceChanged"], to: ["shop"] },
        {
          name: "stock-erp",
          actions: ["AvailableBalanceChanged"],
          to: ["erp"],
          coalesce: { windowSeconds: 5, actions: ["*"] },
        },
      ],
    }),
  );
  const plan = (notifications: unknown[]) => {
    const call = parseCall(new TextEncoder().encode(envelope(notifications)));
    return planMessages(call, route(rules, call.envelope.Notifications).fanouts, rules, 1_000).map((m) => m.body);
  };

  it("gives an ordered destination's deliveries the business keys they carry, each once, and others none", () => {
    const bodies = plan([
      { Action: "OrderCreated", Details: { OrderNumber: "A1" } },
      { Action: "OrderChanged", Details: { OrderNumber: "A1" } },
      { Action: "OrderCreated", Details: { OrderNumber: 42 } },
      { Action: "OrderCreated", Details: {} },
    ]);
    expect(bodies.find((b) => b.destination === "wms")).toMatchObject({ indices: [0, 1, 2, 3], keys: ["A1", "42"] });
    expect(bodies.find((b) => b.destination === "erp")!.keys).toBeUndefined();
  });

  it("puts each coalesced notification in a delivery of its own with its [Action, key, warehouse] and window", () => {
    const bodies = plan([
      { Action: "BalanceChanged", Details: { ProductNumber: "P1", Warehouse: "YX" } },
      { Action: "AvailableBalanceChanged", Details: { ProductNumber: "P1", Warehouse: "YX" } },
      { Action: "BalanceChanged", Details: { Warehouse: "YX" } },
    ]);
    const shop = bodies.filter((b) => b.destination === "shop");
    expect(shop.map((b) => [b.deliveryId.split(".").slice(1).join("."), b.indices, b.coalesce])).toEqual([
      ["shop.n0", [0], { key: JSON.stringify(["BalanceChanged", "P1", "YX"]), window: 10 }],
      // Not listed by the destination's coalesce, and one without a business key: an envelope as ever.
      ["shop", [1, 2], undefined],
    ]);
    // The route's coalesce applies where the destination has none.
    expect(bodies.filter((b) => b.destination === "erp").map((b) => [b.indices, b.coalesce])).toEqual([
      [[1], { key: JSON.stringify(["AvailableBalanceChanged", "P1", "YX"]), window: 5 }],
    ]);
  });
});
