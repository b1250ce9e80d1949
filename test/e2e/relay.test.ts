/**
 * The whole relay, end to end: `wrangler dev` (workerd, local KV and Queues) between a sender that signs
 * like Extend Commerce and real HTTP receivers on loopback. Every sample call goes in; the receivers say
 * what came out: which notifications, in what order, with which headers and signatures, after how many
 * attempts, and what became a dead letter and was replayed.
 */
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../../scripts/lib/wrangler-dev.ts";
import { type RefNotification, type RefRules, refFanout } from "../rules/reference.ts";
import { failFirst, ok, type Received, type Receiver, startReceiver } from "./lib/receivers.ts";
import { loadFixtures, msSignature, type Relay, SECRETS, startRelay, waitFor } from "./lib/relay.ts";

const VERSION = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
/** Longer than the `slow` destination's timeoutMs, so every attempt there times out. */
const SLOW_MS = 3000;
/** Longer than any RETRY_SCHEDULE entry (1 s ± 20%), so the gap after a 429 shows whose delay was used. */
const RETRY_AFTER_SECONDS = 3;

interface Envelope {
  Id: string;
  Attempt: number;
  Properties: unknown;
  Notifications: RefNotification[];
  [field: string]: unknown;
}

const receivers: Record<string, Receiver> = {};
let relay: Relay | undefined;
const calls = loadFixtures().map((fixture) => ({
  ...fixture,
  envelope: JSON.parse(fixture.body.toString("utf8")) as Envelope,
}));

/** Destinations by name, their receiver's behaviour, and their settings in the rules. */
const DESTINATIONS = {
  wms: { behaviour: ok, rules: { signing: { scheme: "ms-signature", secret: "WMS_SECRET" } } },
  shop: {
    behaviour: ok,
    rules: {
      signing: { scheme: "standard-webhooks", secret: "SHOP_SECRET" },
      headers: { "X-Api-Key": { secret: "SHOP_API_KEY" }, "X-Source": "extend" },
    },
  },
  archive: { behaviour: ok, rules: { mode: "single" } },
  flaky: {
    behaviour: failFirst(2, 503),
    rules: { signing: { scheme: "ms-signature", secret: "WMS_SECRET" }, maxAttempts: 4 },
  },
  throttled: {
    behaviour: failFirst(1, 429, { "Retry-After": String(RETRY_AFTER_SECONDS) }),
    rules: { maxAttempts: 3 },
  },
  gone: { behaviour: () => ({ status: 410 }), rules: { maxAttempts: 5 } },
  moved: { behaviour: () => ({ status: 302, headers: { Location: "/elsewhere" } }), rules: { maxAttempts: 5 } },
  slow: { behaviour: () => ({ status: 200, delayMs: SLOW_MS }), rules: { timeoutMs: 1000, maxAttempts: 2 } },
  fixed: { behaviour: ok, rules: {} },
} as const;
type Destination = keyof typeof DESTINATIONS;

const ROUTES = [
  // The example of docs/rules.md.
  {
    name: "stock-yx-to-shop",
    actions: ["AvailableBalanceChanged", "BalanceChanged"],
    warehouses: ["YX"],
    to: ["shop"],
  },
  { name: "rp-purchases", actions: ["Purchase*"], where: { "Details.OrderNumber": { prefix: "RP-" } }, to: ["wms"] },
  {
    name: "orders",
    actions: ["OrderCreated", "OrderCancelled"],
    where: { "Details.OrderType": "NormalOrder" },
    to: ["wms", "shop"],
  },
  { name: "picking", actions: ["PickingStarted"], warehouses: ["ADR-1"], to: ["wms"] },
  { name: "archive-off", actions: ["*"], to: ["wms"], enabled: false },
  // Every notification, one request each.
  { name: "archive", actions: ["*"], to: ["archive"] },
  // The misbehaving receivers.
  { name: "customers", actions: ["Customer*"], to: ["flaky"] },
  { name: "offers", actions: ["Offer*"], to: ["throttled"] },
  { name: "new-products", actions: ["ProductCreated"], to: ["gone"] },
  { name: "changed-products", actions: ["ProductChanged"], to: ["moved"] },
  { name: "price-lists", actions: ["PriceListWebHook"], to: ["slow"] },
  { name: "orders-again", actions: ["OrderCreated"], to: ["wms"] },
];

function rulesDocument(urls: Record<string, string>) {
  return {
    version: 1,
    destinations: Object.fromEntries(
      Object.entries(DESTINATIONS)
        .filter(([name]) => name !== "fixed")
        .map(([name, d]) => [name, { url: urls[name], ...d.rules }]),
    ),
    routes: ROUTES,
  };
}

/** What each destination must get from each call: delivery id → the envelope it must see. */
function expectedDeliveries(): Map<
  string,
  { destination: Destination; call: (typeof calls)[number]; indices: number[] }
> {
  const rules = rulesDocument({}) as unknown as RefRules;
  const expected = new Map<string, { destination: Destination; call: (typeof calls)[number]; indices: number[] }>();
  for (const call of calls) {
    for (const [destination, indices] of refFanout(rules, call.envelope.Notifications)) {
      if (destination === "archive") {
        for (const index of indices) {
          expected.set(`${call.envelope.Id}.${destination}.n${index}`, { destination, call, indices: [index] });
        }
      } else
        expected.set(`${call.envelope.Id}.${destination}`, { destination: destination as Destination, call, indices });
    }
  }
  return expected;
}
const EXPECTED = expectedDeliveries();
const expectedFor = (destination: Destination) => [...EXPECTED].filter(([, e]) => e.destination === destination);
/** The one delivery a destination must get. */
function onlyFor(destination: Destination) {
  const all = expectedFor(destination);
  if (all.length !== 1) throw new Error(`expected one delivery for ${destination}, the rules give ${all.length}`);
  return all[0]!;
}

function bodyOf(request: Received): Envelope {
  return JSON.parse(request.body.toString("utf8")) as Envelope;
}

function requestsFor(destination: Destination, deliveryId: string): Received[] {
  return receivers[destination]!.requests.filter((r) => r.deliveryId === deliveryId);
}

/** A waitFor whose failure shows the relay's recent output. */
async function settle<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 90_000,
): Promise<T> {
  try {
    return await waitFor(what, check, { timeoutMs });
  } catch (error) {
    throw new Error(`${(error as Error).message}\n--- wrangler output (tail) ---\n${relay?.dev.output().slice(-6000)}`);
  }
}

beforeAll(async () => {
  for (const [name, d] of Object.entries(DESTINATIONS)) receivers[name] = await startReceiver(name, d.behaviour);
  relay = await startRelay({ vars: { RETRY_SCHEDULE: "1,1,2", RULES_CACHE_SECONDS: "0" } });
  const urls = Object.fromEntries(Object.entries(receivers).map(([name, r]) => [name, `${r.url}/hooks/${name}`]));
  const put = await relay.admin("/rules", { method: "PUT", body: JSON.stringify(rulesDocument(urls)) });
  expect(put.status, await put.clone().text()).toBe(200);
  expect(await put.json()).toMatchObject({ status: "stored", warnings: [] });
});

afterAll(async () => {
  await Promise.allSettled([relay?.stop(), ...Object.values(receivers).map((r) => r.stop())]);
});

describe("a relay between Extend Commerce and real receivers", () => {
  it("accepts every sample call signed as Extend Commerce signs it", async () => {
    for (const call of calls) {
      // The fixture's signature is what an independent HMAC (node:crypto) computes over the exact bytes.
      expect(msSignature(call.body), call.name).toBe(call.signature);
      const response = await relay!.send(call.body, { "ms-signature": call.signature });
      expect(response.status, `${call.name}: ${await response.clone().text()}`).toBe(202);
      const expectedCount = [...EXPECTED.values()].filter((e) => e.call === call).length;
      expect(await response.json(), call.name).toEqual({
        status: "accepted",
        id: call.envelope.Id,
        notifications: call.envelope.Notifications.length,
        deliveries: expectedCount,
      });
    }
    expect(EXPECTED.size).toBeGreaterThan(40);
  });

  it("delivers to every healthy, flaky and throttled destination, and dead-letters the rest", async () => {
    const deliverable: Destination[] = ["wms", "shop", "archive", "flaky", "throttled"];
    await settle("every deliverable delivery to arrive", () => {
      const missing = [...EXPECTED].filter(
        ([id, e]) =>
          deliverable.includes(e.destination) &&
          !receivers[e.destination]!.delivered().some((r) => r.deliveryId === id),
      );
      return missing.length === 0 ? true : undefined;
    });
    const deadIds = [...EXPECTED]
      .filter(([, e]) => ["gone", "moved", "slow"].includes(e.destination))
      .map(([id]) => id);
    expect(deadIds.length).toBe(3);
    await settle("the three dead letters", async () => {
      const listed = (await relay!.deadLetters()).map((d) => d.deliveryId);
      return deadIds.every((id) => listed.includes(id)) ? true : undefined;
    });
  });

  it("sends each destination exactly its matched notifications, in their original order, in the sender's envelope", () => {
    for (const destination of ["wms", "shop", "archive", "flaky", "throttled"] as const) {
      const delivered = receivers[destination]!.delivered();
      const ids = new Set(delivered.map((r) => r.deliveryId));
      // Nothing unexpected, nothing missing.
      expect([...ids].sort(), destination).toEqual(
        expectedFor(destination)
          .map(([id]) => id)
          .sort(),
      );
      for (const request of delivered) {
        const { call, indices } = EXPECTED.get(request.deliveryId!)!;
        const body = bodyOf(request);
        const { Notifications: _n, Attempt: _a, ...senderFields } = call.envelope;
        const { Notifications, Attempt, ...fields } = body;
        // Id, Properties and any unknown top-level fields as the sender sent them; Attempt is the relay's.
        expect(fields, request.deliveryId).toEqual(senderFields);
        expect(Attempt).toBe(request.attempt);
        expect(Notifications, request.deliveryId).toEqual(indices.map((i) => call.envelope.Notifications[i]));
      }
    }
    // The contract's own example, spelled out (the reference above could share a mistake with the relay).
    const multi = calls.find((c) => c.name === "multi.json")!.envelope;
    const shop = receivers.shop!.delivered().find((r) => r.deliveryId === `${multi.Id}.shop`)!;
    expect(bodyOf(shop).Notifications.map((n) => n.Action)).toEqual([
      "AvailableBalanceChanged",
      "OrderCreated",
      "BalanceChanged",
    ]);
    const wms = receivers.wms!.delivered().find((r) => r.deliveryId === `${multi.Id}.wms`)!;
    expect(bodyOf(wms).Notifications.map((n) => n.Action)).toEqual(["OrderCreated", "PickingStarted"]);
    // The unknown Action and the unknown top-level field travel unchanged.
    const unknown = calls.find((c) => c.name === "unknown-action-extra-fields.json")!.envelope;
    const archived = receivers.archive!.delivered().find((r) => r.deliveryId === `${unknown.Id}.archive.n0`)!;
    expect(bodyOf(archived)).toMatchObject({
      Extra: { Added: "later" },
      Notifications: [{ Action: "StockTakeFinished" }],
    });
    // The non-ASCII sample arrives byte for byte in its notification.
    const unicode = calls.find((c) => c.name === "unicode.json")!.envelope;
    const customer = receivers.flaky!.delivered().find((r) => r.deliveryId === `${unicode.Id}.flaky`)!;
    expect(bodyOf(customer).Notifications[0]!.Details.CustomerNumber).toBe("Åsa-Öberg-ø-€-😀");
  });

  it("sets the headers docs/delivery.md lists, and the destination's own headers with their secrets", () => {
    for (const destination of ["wms", "shop", "archive", "flaky", "throttled"] as const) {
      for (const request of receivers[destination]!.requests) {
        expect(request.method).toBe("POST");
        expect(request.path).toBe(`/hooks/${destination}`);
        expect(request.headers["content-type"]).toBe("application/json");
        expect(request.headers["user-agent"]).toBe(`extend-relay/${VERSION}`);
        expect(request.headers["x-relay-delivery-id"]).toBe(request.deliveryId);
        expect(EXPECTED.has(request.deliveryId!)).toBe(true);
        expect(String(request.attempt)).toBe(request.headers["x-relay-attempt"]);
        expect(request.attempt).toBeGreaterThanOrEqual(1);
      }
    }
    for (const request of receivers.shop!.requests) {
      expect(request.headers["x-api-key"]).toBe(SECRETS.SHOP_API_KEY);
      expect(request.headers["x-source"]).toBe("extend");
    }
    // Destinations without signing get no signature headers, and no other destination's headers.
    for (const request of receivers.archive!.requests) {
      expect(request.headers["ms-signature"]).toBeUndefined();
      expect(request.headers["webhook-signature"]).toBeUndefined();
      expect(request.headers["x-api-key"]).toBeUndefined();
    }
  });

  it("signs ms-signature destinations exactly as Extend Commerce does, with the destination's secret", () => {
    const requests = [...receivers.wms!.requests, ...receivers.flaky!.requests];
    expect(requests.length).toBeGreaterThan(5);
    for (const request of requests) {
      const expected = `sha256=${createHmac("sha256", SECRETS.WMS_SECRET).update(request.body).digest("hex").toUpperCase()}`;
      expect(request.headers["ms-signature"], request.deliveryId).toBe(expected);
      // Not the sender's secret: each hop has its own.
      expect(request.headers["ms-signature"]).not.toBe(msSignature(request.body));
    }
  });

  it("signs standard-webhooks destinations so that the standardwebhooks package verifies them", () => {
    const verifier = new Webhook(SECRETS.SHOP_SECRET);
    const impostor = new Webhook(`whsec_${Buffer.from("another secret of some length").toString("base64")}`);
    const requests = receivers.shop!.requests;
    expect(requests.length).toBeGreaterThan(3);
    for (const request of requests) {
      const headers = {
        "webhook-id": String(request.headers["webhook-id"]),
        "webhook-timestamp": String(request.headers["webhook-timestamp"]),
        "webhook-signature": String(request.headers["webhook-signature"]),
      };
      expect(headers["webhook-id"]).toBe(request.deliveryId);
      const payload = request.body.toString("utf8");
      expect(verifier.verify(payload, headers)).toEqual(JSON.parse(payload));
      expect(() => impostor.verify(payload, headers)).toThrow();
      expect(() => verifier.verify(payload.replace("}", " }"), headers)).toThrow();
    }
  });

  it("gets to a flaky receiver by retrying with the same delivery id and rising attempt numbers", () => {
    const expected = expectedFor("flaky");
    expect(expected.length).toBeGreaterThan(3);
    for (const [id] of expected) {
      const attempts = requestsFor("flaky", id);
      expect(
        attempts.map((r) => [r.attempt, r.answered]),
        id,
      ).toEqual([
        [1, 503],
        [2, 503],
        [3, 200],
      ]);
      expect(attempts.map((r) => bodyOf(r).Attempt)).toEqual([1, 2, 3]);
      // The same notifications every time.
      expect(new Set(attempts.map((r) => JSON.stringify(bodyOf(r).Notifications))).size).toBe(1);
    }
  });

  it("waits at least the receiver's Retry-After before trying a 429 again", () => {
    const expected = expectedFor("throttled");
    expect(expected.length).toBe(2);
    for (const [id] of expected) {
      const attempts = requestsFor("throttled", id);
      expect(
        attempts.map((r) => [r.attempt, r.answered]),
        id,
      ).toEqual([
        [1, 429],
        [2, 200],
      ]);
      // A lower bound only: the backoff alone (1 s ± 20%) would come back sooner.
      expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(RETRY_AFTER_SECONDS * 1000 - 250);
    }
  });

  it("turns a 410, a redirect and a receiver slower than its timeout into dead letters the admin API shows", async () => {
    const [goneId] = onlyFor("gone");
    const [movedId] = onlyFor("moved");
    const [slowId] = onlyFor("slow");

    const listed = await relay!.deadLetters();
    expect(listed.map((d) => d.deliveryId).sort()).toEqual([goneId, movedId, slowId].sort());
    const byId = Object.fromEntries(listed.map((d) => [d.deliveryId, d]));
    expect(byId[goneId]).toMatchObject({
      destination: "gone",
      reason: "permanent_failure",
      attempts: 1,
      lastStatus: 410,
    });
    expect(byId[movedId]).toMatchObject({
      destination: "moved",
      reason: "permanent_failure",
      attempts: 1,
      lastStatus: 302,
    });
    expect(byId[slowId]).toMatchObject({ destination: "slow", reason: "attempts_exhausted", attempts: 2 });
    // Newest first.
    expect(listed.map((d) => d.deadAt)).toEqual(
      listed
        .map((d) => d.deadAt)
        .sort()
        .reverse(),
    );
    // Filtered by destination.
    expect((await relay!.deadLetters("gone")).map((d) => d.deliveryId)).toEqual([goneId]);

    // Permanent failures are not retried; redirects are not followed; the slow one had exactly its maxAttempts.
    expect(receivers.gone!.requests.map((r) => r.answered)).toEqual([410]);
    expect(receivers.moved!.requests.map((r) => r.answered)).toEqual([302]);
    expect(receivers.moved!.requests.filter((r) => r.path === "/elsewhere")).toEqual([]);
    expect(receivers.slow!.requests.map((r) => r.attempt)).toEqual([1, 2]);
    expect(receivers.slow!.delivered()).toEqual([]);

    const response = await relay!.admin(`/dead-letters/${encodeURIComponent(slowId)}`);
    expect(response.status).toBe(200);
    const record = (await response.json()) as Record<string, unknown> & {
      message: { head: string; tail: string; destination: string };
    };
    const price = calls.find((c) => c.name === "PriceListWebHook.json")!.envelope;
    expect(record).toMatchObject({
      deliveryId: slowId,
      destination: "slow",
      reason: "attempts_exhausted",
      attempts: 2,
    });
    expect(record.lastError).toMatch(/1000 ms/);
    expect(JSON.parse(`${record.message.head}1${record.message.tail}`).Notifications).toEqual(price.Notifications);
    expect(Date.parse(String(record.firstAttemptAt))).toBeLessThanOrEqual(Date.parse(String(record.lastAttemptAt)));
    // Secrets stay out of records.
    expect(JSON.stringify(record)).not.toContain(SECRETS.WMS_SECRET);

    const missing = await relay!.admin("/dead-letters/no-such-delivery");
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: "dead_letter_not_found" });
  });

  it("replays a dead letter once its receiver is fixed: same delivery id, attempts afresh, record gone", async () => {
    const [slowId, slow] = onlyFor("slow");
    receivers.slow!.behave(ok);
    const response = await relay!.admin(`/dead-letters/${encodeURIComponent(slowId)}/replay`, { method: "POST" });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ replayed: [slowId], skipped: [] });

    const delivered = await settle("the replayed delivery", () =>
      receivers.slow!.delivered().find((r) => r.deliveryId === slowId),
    );
    expect(delivered.attempt).toBe(1);
    expect(delivered.headers["x-relay-delivery-id"]).toBe(slowId);
    expect(bodyOf(delivered).Notifications).toEqual(slow.call.envelope.Notifications);
    expect((await relay!.admin(`/dead-letters/${encodeURIComponent(slowId)}`)).status).toBe(404);
  });

  it("replays every dead letter of a destination after its URL is fixed in the rules", async () => {
    const [movedId, moved] = onlyFor("moved");
    const urls = Object.fromEntries(Object.entries(receivers).map(([name, r]) => [name, `${r.url}/hooks/${name}`]));
    // The destination keeps its name; only its URL changes (to the receiver the redirect pointed at).
    const put = await relay!.admin("/rules", {
      method: "PUT",
      body: JSON.stringify(rulesDocument({ ...urls, moved: urls.fixed! })),
    });
    expect(put.status).toBe(200);

    const response = await relay!.admin("/dead-letters/replay?destination=moved", { method: "POST" });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ replayed: [movedId], skipped: [], more: false });

    const delivered = await settle("the replay to the fixed URL", () =>
      receivers.fixed!.delivered().find((r) => r.deliveryId === movedId),
    );
    expect(delivered.path).toBe("/hooks/fixed");
    expect(bodyOf(delivered).Notifications).toEqual(moved.call.envelope.Notifications);
    expect(receivers.moved!.requests.length).toBe(1);
    // The 410 one is still there: replaying one destination leaves the others alone.
    expect((await relay!.deadLetters()).map((d) => d.destination)).toEqual(["gone"]);
  });

  it("answers the sender's retry of an accepted call as a duplicate and delivers nothing again", async () => {
    const multi = calls.find((c) => c.name === "multi.json")!;
    const before = Object.values(receivers).reduce((n, r) => n + r.requests.length, 0);
    const response = await relay!.send(multi.body, { "ms-signature": multi.signature });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "duplicate", id: multi.envelope.Id });
    // A delivery that was wrongly enqueued would show up with the others; the replays above took longer than that.
    const fresh = await relay!.send(JSON.stringify({ ...multi.envelope, Id: "f".repeat(32) }));
    expect(fresh.status).toBe(202);
    await settle("the control call's deliveries", () =>
      receivers.archive!.delivered().filter((r) => r.deliveryId?.startsWith("f".repeat(32))).length === 6
        ? true
        : undefined,
    );
    const after = Object.values(receivers)
      .flatMap((r) => r.requests.slice(0))
      .filter((r) => !r.deliveryId?.startsWith("f".repeat(32)));
    expect(after.length).toBe(before);
  });
});
