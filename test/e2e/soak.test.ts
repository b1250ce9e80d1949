/**
 * Soak with faults: 500 signed sender calls fanned out to five receivers that fail 30% of the time at
 * random (500 / 503, and now and then by answering later than the destination's timeout). Half-way through,
 * destination `b` is paused by hand; it is resumed once every call is sent. `o` has `order: "key"`, `s` coalesces
 * stock balances (docs/rules.md, "Shaping deliveries"). Afterwards every (call, destination) the rules call for
 * (per notification for `s`) is accounted for: delivered (by X-Relay-Delivery-Id), a dead letter in the admin API,
 * or superseded by a delivery that was delivered. Nothing unaccounted; repeats only ever under the same delivery
 * id; nothing reached `b` while it was paused; `o` never had two deliveries of one key out of order or at once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RefNotification, type RefRules, refFanout } from "../rules/reference.ts";
import { type Behaviour, type Receiver, startReceiver } from "./lib/receivers.ts";
import { freshId, type Relay, startRelay, waitFor } from "./lib/relay.ts";

const CALLS = 500;
const CONCURRENCY = 6;
const FAILURE_RATE = 0.3;
/** Of the failures, this share is a timeout (slower than TIMEOUT_MS); the rest are 500 or 503. */
const TIMEOUT_SHARE = 0.1;
const TIMEOUT_MS = 1000;
const SEED = Number(process.env.SOAK_SEED ?? 20261128);

/** A small seeded generator (mulberry32), so that a failing soak can be run again as it was. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
const random = seeded(SEED);

const faulty: Behaviour = () => {
  const roll = random();
  if (roll >= FAILURE_RATE) return { status: 200 };
  if (roll < FAILURE_RATE * TIMEOUT_SHARE) return { status: 200, delayMs: TIMEOUT_MS + 700 };
  return { status: roll < FAILURE_RATE * 0.55 ? 500 : 503 };
};

/** maxAttempts per destination: high enough for most to get through, low enough on `c` that some dead-letter. */
const DESTINATIONS = { a: 10, b: 8, c: 3, o: 4, s: 12 } as const;
/** How `o` and `s` shape their deliveries. */
const SHAPING: Partial<Record<keyof typeof DESTINATIONS, Record<string, unknown>>> = {
  o: { order: "key" },
  s: { coalesce: { windowSeconds: 2, actions: ["AvailableBalanceChanged", "BalanceChanged"] } },
};
type Destination = keyof typeof DESTINATIONS;

const RULES = {
  version: 1,
  routes: [
    { name: "everything", actions: ["*"], to: ["a"] },
    { name: "orders-and-stock", actions: ["Order*", "AvailableBalanceChanged", "BalanceChanged"], to: ["b"] },
    { name: "yx", actions: ["*"], warehouses: ["YX"], to: ["c"] },
    { name: "rp", actions: ["Purchase*"], where: { "Details.OrderNumber": { prefix: "RP-" } }, to: ["b", "c"] },
    { name: "ordered", actions: ["OrderCreated"], to: ["o"] },
    { name: "stock", actions: ["AvailableBalanceChanged", "BalanceChanged"], to: ["s"] },
  ],
};

const SAMPLES: RefNotification[] = [
  { Action: "OrderCreated", Details: { OrderNumber: "3339887", OrderType: "NormalOrder" } },
  { Action: "AvailableBalanceChanged", Details: { ProductNumber: "8684", Warehouse: "YX", AvailableBalance: 22 } },
  { Action: "BalanceChanged", Details: { ProductNumber: "7495", Warehouse: "BA", Balance: 43 } },
  { Action: "PurchaseCreated", Details: { OrderNumber: "RP-70002830", Warehouse: "ADR-1" } },
  { Action: "CustomerCreated", Details: { CustomerNumber: "817472" } },
  { Action: "PickingStarted", Details: { Order: { OrderNumber: "802624", Warehouse: "YX" } } },
  { Action: "ProductChanged", Details: { ProductNumber: "172488", Name: "Åsa 😀" } },
];

interface Call {
  id: string;
  body: string;
  notifications: RefNotification[];
}

function makeCalls(): Call[] {
  return Array.from({ length: CALLS }, (_, i) => {
    const id = freshId();
    const count = 1 + Math.floor(random() * 3);
    const notifications = Array.from({ length: count }, (_, k) => {
      const sample = SAMPLES[Math.floor(random() * SAMPLES.length)]!;
      // Orders of 40 numbers: each key of the ordered destination gets a few deliveries, one at a time.
      const order = sample.Action === "OrderCreated" && { OrderNumber: `3339${800 + Math.floor(random() * 40)}` };
      return { ...sample, Details: { ...sample.Details, ...order, Seq: `${i}.${k}` } };
    });
    return {
      id,
      notifications,
      body: JSON.stringify({
        Id: id,
        Attempt: 1,
        Properties: { NotificationId: `${i}` },
        Notifications: notifications,
      }),
    };
  });
}

const receivers = {} as Record<Destination, Receiver>;
let relay: Relay | undefined;

beforeAll(async () => {
  for (const name of Object.keys(DESTINATIONS) as Destination[]) receivers[name] = await startReceiver(name, faulty);
  relay = await startRelay({ vars: { RETRY_SCHEDULE: "1,1,1", RULES_CACHE_SECONDS: "5" } });
  const destinations = Object.fromEntries(
    Object.entries(DESTINATIONS).map(([name, maxAttempts]) => [
      name,
      {
        url: `${receivers[name as Destination].url}/${name}`,
        timeoutMs: TIMEOUT_MS,
        maxAttempts,
        ...SHAPING[name as Destination],
      },
    ]),
  );
  const put = await relay.admin("/rules", { method: "PUT", body: JSON.stringify({ ...RULES, destinations }) });
  expect(put.status, await put.clone().text()).toBe(200);
});

afterAll(async () => {
  await Promise.allSettled([relay?.stop(), ...Object.values(receivers).map((r) => r.stop())]);
});

/** Shows the figures in `npm test` output even when the test passes (console output of passing tests is silenced). */
function report(figures: Record<string, number | string>): void {
  const line = `soak figures: ${Object.entries(figures)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ")}`;
  process.stderr.write(`\n${line}\n`);
}

describe("soak: 500 calls, five receivers failing 30% of the time, one paused half-way, one ordered, one coalescing", () => {
  it("accounts for every expected (call, destination): delivered or dead-lettered, never lost", async () => {
    const started = Date.now();
    const calls = makeCalls();
    const rules = { ...RULES, destinations: { a: {}, b: {}, c: {}, o: {}, s: {} } } as unknown as RefRules;
    const expected = new Map<string, { destination: Destination; call: Call; indices: number[] }>();
    for (const call of calls) {
      for (const [destination, indices] of refFanout(rules, call.notifications)) {
        if (destination === "s") {
          // Coalesced notifications (all of s's have a business key) go one per delivery.
          for (const i of indices) expected.set(`${call.id}.s.n${i}`, { destination: "s", call, indices: [i] });
        } else expected.set(`${call.id}.${destination}`, { destination: destination as Destination, call, indices });
      }
    }

    // Send, a few at a time, as Extend Commerce would; pause b half-way.
    let next = 0;
    const accepted = new Map<string, number>();
    let pausing: Promise<Response> | undefined;
    let pausedAt = 0;
    /** When each call's request started and when its answer came: the door accepted it in between. */
    const sends = new Map<string, { start: number; end: number }>();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < calls.length) {
          if (next >= calls.length / 2 && pausing === undefined) {
            pausing = relay!.admin("/destinations/b/pause", { method: "POST" });
            pausedAt = Date.now();
          }
          const call = calls[next++]!;
          const start = Date.now();
          const response = await relay!.send(call.body);
          sends.set(call.id, { start, end: Date.now() });
          const json = (await response.json()) as { status: string; deliveries: number };
          expect(response.status, JSON.stringify(json)).toBe(202);
          accepted.set(call.id, json.deliveries);
        }
      }),
    );
    for (const call of calls) {
      expect(accepted.get(call.id)).toBe([...expected.values()].filter((e) => e.call === call).length);
    }
    const sentAt = Date.now();
    expect((await pausing!).status).toBe(200);
    // Paused by hand: b holds what comes, attempts nothing (once the pause reached every isolate, within 2 s).
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const whilePaused = (await (await relay!.admin("/destinations/b")).json()) as { state: string; held: number };
    expect(whilePaused.state).toBe("paused");
    expect(whilePaused.held).toBeGreaterThan(0);
    const resumedAt = Date.now();
    expect((await relay!.admin("/destinations/b/resume", { method: "POST" })).status).toBe(200);
    const duringPause = receivers.b.requests.filter((r) => r.at > pausedAt + 2500 && r.at < resumedAt);

    // Wait until every expected delivery is delivered, dead-lettered, or superseded by one that was delivered.
    let deadIds = new Set<string>();
    let supersededBy = new Map<string, string>();
    const deliveredIds = () =>
      new Set(Object.values(receivers).flatMap((r) => r.delivered().map((q) => q.deliveryId!)));
    /** The delivery that finally carried what `id` was superseded for (superseded ones in between followed). */
    const carrier = (id: string) => {
      let at = id;
      for (let hops = 0; supersededBy.has(at) && hops < 100; hops++) at = supersededBy.get(at)!;
      return at;
    };
    const unaccounted = () => {
      const delivered = deliveredIds();
      return [...expected.keys()].filter((id) => {
        if (delivered.has(id) || deadIds.has(id)) return false;
        return !supersededBy.has(id) || !delivered.has(carrier(id));
      });
    };
    /** The ledger's superseded deliveries of `s`, each with the delivery that superseded it. */
    const superseded = async () => {
      const found = new Map<string, string>();
      let cursor: string | undefined;
      do {
        const query = new URLSearchParams({
          destination: "s",
          status: "superseded",
          limit: "100",
          ...(cursor !== undefined && { cursor }),
        });
        const page = (await (await relay!.admin(`/deliveries?${query}`)).json()) as {
          items: { deliveryId: string; supersededBy?: string }[];
          cursor?: string;
        };
        for (const item of page.items)
          if (item.supersededBy !== undefined) found.set(item.deliveryId, item.supersededBy);
        cursor = page.cursor;
      } while (cursor !== undefined);
      return found;
    };
    try {
      await waitFor(
        "every expected delivery to be delivered or dead-lettered",
        async () => {
          if (unaccounted().length > 0) {
            deadIds = new Set((await relay!.deadLetters()).map((d) => d.deliveryId));
            supersededBy = await superseded();
          }
          return unaccounted().length === 0 ? true : undefined;
        },
        { timeoutMs: 200_000, intervalMs: 2000 },
      );
    } finally {
      // Figures are reported whether or not everything was accounted for in time.
      const deadLetters = await relay!.deadLetters();
      deadIds = new Set(deadLetters.map((d) => d.deliveryId));
      const delivered = deliveredIds();
      const requests = Object.values(receivers).flatMap((r) => r.requests);
      const successes = Object.values(receivers).flatMap((r) => r.delivered());
      report({
        seed: SEED,
        sent: calls.length,
        accepted: accepted.size,
        expected: expected.size,
        delivered: [...expected.keys()].filter((id) => delivered.has(id)).length,
        deadLetters: deadLetters.length,
        deliveredAndDeadLettered: [...delivered].filter((id) => deadIds.has(id)).length,
        unaccounted: unaccounted().length,
        unaccountedBy: JSON.stringify(
          Object.fromEntries(
            Object.keys(DESTINATIONS).map((d) => [
              d,
              unaccounted().filter((id) => expected.get(id)!.destination === d).length,
            ]),
          ),
        ),
        duplicateDeliveries: successes.length - delivered.size,
        attempts: requests.length,
        failedAttempts: requests.filter((r) => r.answered === 500 || r.answered === 503).length,
        timedOutAttempts: requests.filter((r) => r.answered === "aborted" || r.answered === undefined).length,
        superseded: supersededBy.size,
        deliveriesToS: receivers.s.delivered().length,
        heldWhilePaused: whilePaused.held,
        attemptsAtBWhilePaused: duringPause.length,
        sendSeconds: Math.round((sentAt - started) / 100) / 10,
        settleSeconds: Math.round((Date.now() - sentAt) / 100) / 10,
      });
    }
    expect(unaccounted()).toEqual([]);
    expect(duringPause).toEqual([]);
    // Coalescing sent fewer than it was given: each (product, warehouse) about once per window.
    const toS = [...expected.values()].filter((e) => e.destination === "s").length;
    expect(supersededBy.size).toBeGreaterThan(toS / 2);

    // Nothing arrived that the rules did not ask for, and every arrival carried exactly its call's matched notifications.
    for (const [name, receiver] of Object.entries(receivers)) {
      for (const request of receiver.requests) {
        const wanted = expected.get(request.deliveryId!);
        expect(wanted?.destination, request.deliveryId).toBe(name);
        const body = JSON.parse(request.body.toString("utf8")) as { Id: string; Notifications: unknown[] };
        expect(body.Id).toBe(wanted!.call.id);
        expect(body.Notifications).toEqual(wanted!.indices.map((i) => wanted!.call.notifications[i]));
      }
    }
    // Repeats are allowed only as the same delivery again: same id, and a higher attempt than the earlier 2xx.
    for (const receiver of Object.values(receivers)) {
      const byId = new Map<string, number[]>();
      for (const request of receiver.delivered())
        byId.set(request.deliveryId!, [...(byId.get(request.deliveryId!) ?? []), request.attempt!]);
      for (const [id, attempts] of byId) expect(new Set(attempts).size, id).toBe(attempts.length);
    }
    // `o`: the deliveries of one business key went one at a time, in the order the relay accepted them. In the
    // order requests arrived at `o`: once another delivery of a key was tried, an earlier one never was again; and
    // none was tried before one the door had surely accepted before it (answered before it was even sent).
    const byKey = new Map<string, string[]>();
    for (const request of receivers.o.requests) {
      const wanted = expected.get(request.deliveryId!)!;
      for (const i of wanted.indices) {
        const d = wanted.call.notifications[i]!.Details as { OrderNumber?: string; Order?: { OrderNumber: string } };
        const key = d.OrderNumber ?? d.Order!.OrderNumber;
        const list = byKey.get(key) ?? [];
        if (list.at(-1) !== request.deliveryId) list.push(request.deliveryId!);
        byKey.set(key, list);
      }
    }
    const sendOf = (deliveryId: string) => sends.get(deliveryId.split(".")[0]!)!;
    const outOfOrder = [...byKey].flatMap(([key, tried]) =>
      tried.flatMap((id, i) => {
        const before = tried.slice(0, i);
        if (before.includes(id)) return [`${key}: ${id} tried again after another`];
        const overtaken = before.filter((earlier) => sendOf(id).end < sendOf(earlier).start);
        return overtaken.length > 0 ? [`${key}: ${id} tried after ${overtaken.join(", ")}`] : [];
      }),
    );
    report({ orderedKeys: byKey.size, orderedRequests: receivers.o.requests.length });
    expect(outOfOrder).toEqual([]);
    // Dead letters are expected deliveries whose attempts ran out (these receivers never fail permanently).
    for (const dead of await relay!.deadLetters()) {
      expect(expected.has(dead.deliveryId), dead.deliveryId).toBe(true);
      expect(dead).toMatchObject({
        reason: "attempts_exhausted",
        attempts: DESTINATIONS[dead.destination as Destination],
      });
    }

    // The ledger holds every accepted pair with the status its receiver saw (superseded for what was), and every call.
    const ledgerStatus = async () => {
      const statuses = new Map<string, string>();
      for (const destination of Object.keys(DESTINATIONS)) {
        let cursor: string | undefined;
        do {
          const query = new URLSearchParams({ destination, limit: "100", ...(cursor !== undefined && { cursor }) });
          const page = (await (await relay!.admin(`/deliveries?${query}`)).json()) as {
            items: { deliveryId: string; status: string }[];
            cursor?: string;
          };
          for (const item of page.items) statuses.set(item.deliveryId, item.status);
          cursor = page.cursor;
        } while (cursor !== undefined);
      }
      return statuses;
    };
    const delivered = deliveredIds();
    const wanted = new Map(
      [...expected.keys()].map((id) => [
        id,
        deadIds.has(id) ? "dead" : supersededBy.has(id) && !delivered.has(id) ? "superseded" : "delivered",
      ]),
    );
    const statuses = await waitFor(
      "the ledger to show every delivery as its receiver saw it",
      async () => {
        const found = await ledgerStatus();
        return [...wanted].every(([id, status]) => found.get(id) === status) ? found : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 2000 },
    );
    expect(statuses.size).toBe(expected.size);
    expect([...wanted].filter(([id]) => delivered.has(id) && deadIds.has(id))).toEqual([]);
    const ledgerCalls = new Set<string>();
    let cursor: string | undefined;
    do {
      const page = (await (
        await relay!.admin(`/calls?limit=100${cursor === undefined ? "" : `&cursor=${cursor}`}`)
      ).json()) as { items: { id: string }[]; cursor?: string };
      for (const item of page.items) ledgerCalls.add(item.id);
      cursor = page.cursor;
    } while (cursor !== undefined);
    expect(ledgerCalls.size).toBe(accepted.size);
    report({ ledgerDeliveries: statuses.size, ledgerCalls: ledgerCalls.size });
  }, 300_000);
});
