import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { answerSchema } from "../../src/admin/api.ts";
import type { Env } from "../../src/env.ts";
import { resetGateCache } from "../../src/gate/client.ts";
import { getDelivery } from "../../src/ledger/deliveries.ts";
import type { DeadLetter } from "../../src/queues/dead-letter.ts";
import { QUEUES } from "../../src/queues/names.ts";
import {
  admin,
  consume,
  deadLetterRecord,
  deliveryMessage,
  EXAMPLE_RULES,
  eventually,
  putRules,
  sentBodies,
} from "../helpers.ts";

/**
 * The gates on workerd: the DELIVERIES consumer asks a limited destination's gate about each delivery, the
 * gate holds what may not go yet in its storage and sends it itself, in arrival order; the circuit breaker
 * pauses a failing destination and a probe resumes it; alerts go out through the alerts queue.
 */

let n = 0;
/** A destination name no other test has used: each gate keeps its state for the whole file. */
const fresh = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${n++}`;

interface Seen {
  url: string;
  deliveryId: string | null;
  attempt: string | null;
  at: number;
  body: string;
}
let seen: Seen[];
let answer: (request: Request) => Response | Promise<Response>;
let inFlight: number;
let maxInFlight: number;

beforeEach(() => {
  resetGateCache();
  seen = [];
  inFlight = 0;
  maxInFlight = 0;
  answer = () => new Response("ok");
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    seen.push({
      url: request.url,
      deliveryId: request.headers.get("x-relay-delivery-id"),
      attempt: request.headers.get("x-relay-attempt"),
      at: Date.now(),
      body: await request.clone().text(),
    });
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      return await answer(request);
    } finally {
      inFlight--;
    }
  });
});
afterEach(() => vi.restoreAllMocks());

async function rulesWith(destinations: Record<string, unknown>): Promise<void> {
  await putRules({ ...EXAMPLE_RULES, destinations: { ...EXAMPLE_RULES.destinations, ...destinations } });
}

const to = (url: string) => seen.filter((s) => s.url === url);
const alertsAt = (url: string) => to(url).map((s) => JSON.parse(s.body) as Record<string, unknown>);
const deliver = (messages: unknown[]) => consume(QUEUES.deliveries, messages);

describe("rateLimit", () => {
  it("admits what fits the next second, holds the rest in the gate and sends it at the rate, in order, as first attempts", async () => {
    const name = fresh("rate");
    const url = `https://${name}.test/`;
    await rulesWith({ [name]: { url, rateLimit: { perSecond: 10 } } });
    const messages = Array.from({ length: 25 }, () => deliveryMessage(name));
    const result = await deliver(messages);
    // Every message is settled at once: sent, or kept by the gate. None comes back on the queue.
    expect(result.explicitAcks).toHaveLength(25);
    expect(result.requeued).toEqual([]);
    // The consumer sent what fitted the next second itself; the gate sends the rest.
    expect(to(url).length).toBeLessThanOrEqual(11);

    await eventually(() => expect(to(url)).toHaveLength(25), 20_000);
    const sent = to(url);
    expect(sent.map((s) => s.deliveryId)).toEqual(messages.map((m) => m.deliveryId));
    expect(sent.every((s) => s.attempt === "1")).toBe(true);
    // 10 a second: 24 gaps of 100 ms (timers may run a little late, never early).
    expect(sent.at(-1)!.at - sent[0]!.at).toBeGreaterThanOrEqual(2400 - 50);
    for (let i = 10; i < sent.length; i++) expect(sent[i]!.at - sent[i - 10]!.at).toBeGreaterThanOrEqual(1000 - 50);
    const last = messages.at(-1)!;
    await eventually(async () => {
      const view = await getDelivery(env.LEDGER, env.PAYLOADS, last.deliveryId);
      expect(view).toMatchObject({ status: "delivered", attemptCount: 1 });
      expect(view?.held).toBeUndefined();
    });
  });

  it("shows a delivery over the limit as held in the ledger, with the reason, until its turn comes", async () => {
    const name = fresh("slow");
    const url = `https://${name}.test/`;
    // One request every 6 s.
    await rulesWith({ [name]: { url, rateLimit: { perMinute: 10 } } });
    const [first, second] = [deliveryMessage(name), deliveryMessage(name)];
    await deliver([first, second]);
    expect(to(url).map((s) => s.deliveryId)).toEqual([first.deliveryId]);
    await eventually(async () =>
      expect(await getDelivery(env.LEDGER, env.PAYLOADS, second.deliveryId)).toMatchObject({
        status: "held",
        attemptCount: 0,
        held: { reason: "rate_limit" },
      }),
    );
    await eventually(() => expect(to(url)).toHaveLength(2), 10_000);
    expect(to(url)[1]!.at - to(url)[0]!.at).toBeGreaterThanOrEqual(6000 - 50);
    await eventually(async () =>
      expect(await getDelivery(env.LEDGER, env.PAYLOADS, second.deliveryId)).toMatchObject({
        status: "delivered",
        attemptCount: 1,
      }),
    );
  });
});

describe("concurrency", () => {
  it("never has more requests in flight than the destination allows, across batches, and loses none", async () => {
    const name = fresh("conc");
    const url = `https://${name}.test/`;
    await rulesWith({ [name]: { url, concurrency: 2 } });
    answer = async () => {
      await new Promise((resolve) => setTimeout(resolve, 150));
      return new Response("ok");
    };
    const first = Array.from({ length: 6 }, () => deliveryMessage(name));
    const second = Array.from({ length: 6 }, () => deliveryMessage(name));
    await Promise.all([deliver(first), deliver(second)]);
    await eventually(() => expect(to(url)).toHaveLength(12), 20_000);
    expect(maxInFlight).toBeLessThanOrEqual(2);
    expect(new Set(to(url).map((s) => s.deliveryId)).size).toBe(12);
  });
});

describe("the circuit breaker", () => {
  it("pauses after the failures in a row, holds without attempting, probes after the cool-down (doubling while it fails), then sends what it held in order", async () => {
    const name = fresh("breaker");
    const url = `https://${name}.test/`;
    const hook = `https://alerts.test/${name}`;
    await rulesWith({
      [name]: { url, maxAttempts: 10, circuit: { failures: 3, cooldownSeconds: 1 }, alertWebhook: hook },
    });
    // Down for three attempts and the first probe, then healed.
    let failures = 4;
    answer = (request) => {
      if (request.url !== url || failures === 0) return new Response("ok");
      failures--;
      return new Response("down", { status: 503 });
    };

    const failing = Array.from({ length: 3 }, () => deliveryMessage(name));
    const tripped = await deliver(failing);
    // Three attempts, three retries scheduled: the third failure opened the circuit.
    expect(tripped.requeued.map((r) => r.body.attempts)).toEqual([1, 1, 1]);
    const pausedAt = Date.now();

    const waiting = Array.from({ length: 4 }, () => deliveryMessage(name));
    const held = await deliver(waiting);
    expect(held.explicitAcks).toHaveLength(4);
    expect(held.requeued).toEqual([]);
    // Paused: nothing more was attempted.
    expect(to(url)).toHaveLength(3);
    const state = await (await admin(`/destinations/${name}`)).json<Record<string, unknown>>();
    expect(state).toMatchObject({ state: "paused", pausedBy: "circuit", failures: 3, held: 4, lastStatus: 503 });

    // The first probe (the oldest held delivery) fails after 1 s; the second goes 2 s later and succeeds, then the
    // rest follow, in order.
    await eventually(() => expect(to(url)).toHaveLength(8), 20_000);
    const [probe, again, ...rest] = to(url).slice(3);
    expect([probe!.deliveryId, probe!.attempt]).toEqual([waiting[0]!.deliveryId, "1"]);
    expect([again!.deliveryId, again!.attempt]).toEqual([waiting[0]!.deliveryId, "2"]);
    expect(rest.map((s) => [s.deliveryId, s.attempt])).toEqual(waiting.slice(1).map((m) => [m.deliveryId, "1"]));
    expect(probe!.at - pausedAt).toBeGreaterThanOrEqual(1000 - 50);
    expect(again!.at - probe!.at).toBeGreaterThanOrEqual(2000 - 50);

    await eventually(() =>
      expect(alertsAt(hook).map((a) => a.type)).toEqual(["destination_paused", "destination_recovered"]),
    );
    const [paused, recovered] = alertsAt(hook);
    expect(paused).toMatchObject({ destination: name, count: 3, lastStatus: 503, reason: "circuit", held: 0 });
    expect(paused!.text).toContain(`${name} is paused: 3 attempts in a row failed`);
    expect(paused!.text).toContain("HTTP 503");
    expect(recovered).toMatchObject({ destination: name, count: 4 });
    expect(recovered!.text).toContain(`${name} has recovered`);
    const after = await (await admin(`/destinations/${name}`)).json<Record<string, unknown>>();
    expect(after).toMatchObject({ state: "active", failures: 0, held: 0 });
  });

  it("alerts destination_failing at a quarter of the circuit's failures, once, and pauses nothing with circuit false", async () => {
    const name = fresh("flaky");
    const url = `https://${name}.test/`;
    const hook = `https://alerts.test/${name}`;
    await rulesWith({ [name]: { url, maxAttempts: 10, circuit: false, alertWebhook: hook } });
    answer = (request) => (request.url === url ? new Response("no", { status: 500 }) : new Response("ok"));
    for (let i = 0; i < 8; i++) await deliver([deliveryMessage(name)]);
    expect(to(url)).toHaveLength(8);
    await eventually(() => expect(alertsAt(hook).map((a) => a.type)).toEqual(["destination_failing"]));
    const [failing] = alertsAt(hook);
    expect(failing).toMatchObject({ count: 5, lastStatus: 500 });
    expect(failing!.text).toContain("5 attempts in a row");
    const state = await (await admin(`/destinations/${name}`)).json<Record<string, unknown>>();
    expect(state).toMatchObject({ state: "active", failures: 8 });
  });
});

describe("the held deliveries' cap", () => {
  it("holds up to MAX_HELD_PER_DESTINATION, alerts near it once, and makes what is over it a dead letter saying why", async () => {
    const name = fresh("capped");
    const url = `https://${name}.test/`;
    await rulesWith({ [name]: { url } });
    await admin(`/destinations/${name}/pause`, { method: "POST" });
    const deadLetters = vi.spyOn(env.DEAD_LETTERS, "send");
    const alerts = vi.spyOn(env.ALERTS, "send");
    const messages = Array.from({ length: 110 }, () => deliveryMessage(name));
    for (let i = 0; i < messages.length; i += 10) {
      const result = await consume(QUEUES.deliveries, messages.slice(i, i + 10), {
        env: { MAX_HELD_PER_DESTINATION: "100" },
      });
      expect(result.explicitAcks).toHaveLength(10);
    }
    const list = await (await admin("/destinations")).json<{ destinations: Record<string, unknown>[] }>();
    expect(list.destinations.find((d) => d.name === name)).toMatchObject({ held: 100 });
    const dead = sentBodies<DeadLetter>(deadLetters);
    expect(dead.map((d) => d.deliveryId)).toEqual(messages.slice(100).map((m) => m.deliveryId));
    expect(dead.every((d) => d.reason === "held_limit" && d.detail.includes("MAX_HELD_PER_DESTINATION 100"))).toBe(
      true,
    );
    expect(dead[0]!.message).toBeDefined(); // replayable
    await eventually(() => {
      const near = sentBodies<{ alert: { type: string; count: number; destination: string } }>(alerts).filter(
        (a) => a.alert.type === "destination_held_near_cap" && a.alert.destination === name,
      );
      expect(near).toHaveLength(1);
      expect(near[0]!.alert.count).toBeGreaterThanOrEqual(80);
    });
    expect(to(url)).toEqual([]);
  });
});

describe("pause and resume by hand", () => {
  it("holds everything while paused and sends it in order after resume", async () => {
    const name = fresh("manual");
    const url = `https://${name}.test/`;
    await rulesWith({ [name]: { url } });
    const paused = await admin(`/destinations/${name}/pause`, { method: "POST" });
    expect(paused.status).toBe(200);
    expect(await paused.json()).toMatchObject({ name, state: "paused", pausedBy: "hand" });

    const messages = Array.from({ length: 5 }, () => deliveryMessage(name));
    const result = await deliver(messages);
    expect(result.explicitAcks).toHaveLength(5);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(to(url)).toEqual([]);
    const list = await (await admin("/destinations")).json<{ destinations: Record<string, unknown>[] }>();
    expect(list.destinations.find((d) => d.name === name)).toMatchObject({ state: "paused", held: 5 });
    await eventually(async () =>
      expect((await getDelivery(env.LEDGER, env.PAYLOADS, messages[0]!.deliveryId))?.held?.reason).toBe("paused"),
    );

    const resumed = await admin(`/destinations/${name}/resume`, { method: "POST" });
    expect(await resumed.json()).toMatchObject({ state: "active" });
    await eventually(() => expect(to(url)).toHaveLength(5));
    expect(to(url).map((s) => s.deliveryId)).toEqual(messages.map((m) => m.deliveryId));
  });

  it("rests instead of sending a held delivery again when its dead letter cannot be enqueued", async () => {
    const name = fresh("unsettled");
    const url = `https://${name}.test/`;
    await rulesWith({ [name]: { url } });
    await admin(`/destinations/${name}/pause`, { method: "POST" });
    const messages = [deliveryMessage(name)];
    await deliver(messages);
    await eventually(async () => {
      const list = await (await admin("/destinations")).json<{ destinations: Record<string, unknown>[] }>();
      expect(list.destinations.find((d) => d.name === name)).toMatchObject({ held: 1 });
    });
    answer = () => new Response("gone", { status: 410 });
    const gate = env.GATES.getByName(name);
    await runInDurableObject(gate, (instance) => {
      vi.spyOn((instance as unknown as { env: Env }).env.DEAD_LETTERS, "send").mockRejectedValue(new Error("down"));
    });
    await admin(`/destinations/${name}/resume`, { method: "POST" });
    await eventually(() => expect(to(url)).toHaveLength(1));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    // One request, not one per pass of the pump: the delivery is still held, its attempt counted.
    expect(to(url)).toHaveLength(1);
    const list = await (await admin("/destinations")).json<{ destinations: Record<string, unknown>[] }>();
    expect(list.destinations.find((d) => d.name === name)).toMatchObject({ state: "active", held: 1 });
  });

  it("answers 404 for a destination the rules do not have", async () => {
    for (const action of ["pause", "resume"]) {
      const response = await admin(`/destinations/nope/${action}`, { method: "POST" });
      expect(response.status).toBe(404);
      expect(await response.json()).toMatchObject({ error: "destination_not_found" });
    }
    expect((await admin("/admin/destinations/nope")).status).toBe(404);
  });
});

describe("a gate that cannot be reached", () => {
  it("sends a limited destination's deliveries back to the queue unattempted, 5 s doubling to 5 min", async () => {
    const name = fresh("unreachable");
    const url = `https://${name}.test/`;
    await rulesWith({ [name]: { url, rateLimit: { perSecond: 5 } } });
    const down = () => Promise.reject(new Error("gate down"));
    const GATES = { getByName: () => ({ admit: down, status: down, settle: down }) };
    const delays = [];
    for (const attempts of [1, 2, 4, 7, 50]) {
      const result = await consume(QUEUES.deliveries, [deliveryMessage(name)], { attempts, env: { GATES } });
      delays.push(result.retryMessages.map((m) => m.delaySeconds));
    }
    expect(delays).toEqual([[5], [10], [40], [300], [300]]);
    expect(to(url)).toEqual([]);
  });
});

describe("a destination without limits", () => {
  it("is never asked about per delivery while it is healthy: its gate stores nothing", async () => {
    const name = fresh("plain");
    const url = `https://${name}.test/`;
    await rulesWith({ [name]: { url } });
    for (let i = 0; i < 3; i++) await deliver(Array.from({ length: 5 }, () => deliveryMessage(name)));
    expect(to(url)).toHaveLength(15);
    const stored = await runInDurableObject(env.GATES.getByName(name), async (_gate, state) =>
      state.storage.kv.get("gate"),
    );
    expect(stored).toBeUndefined();
  });
});

describe("deliveries_dead", () => {
  it("alerts the dead letters of a destination once, with the count and the last error, then waits out the cool-down", async () => {
    const name = fresh("dying");
    const hook = `https://alerts.test/${name}`;
    await rulesWith({ [name]: { url: `https://${name}.test/`, alertWebhook: hook } });
    await consume(QUEUES.deadLetters, [deadLetterRecord(name), deadLetterRecord(name)]);
    await eventually(() => expect(alertsAt(hook)).toHaveLength(1));
    const [alert] = alertsAt(hook);
    expect(alert).toMatchObject({ type: "deliveries_dead", destination: name, count: 2, lastStatus: 410 });
    expect(alert!.text).toContain(`2 deliveries to ${name} became dead letters`);
    expect(alert!.text).toContain("permanent_failure");
    expect(alert!.text).toContain(`POST /admin/dead-letters/replay?destination=${name}`);
    // More within ALERT_COOLDOWN_MINUTES (60): counted for the next alert, not sent now.
    await consume(QUEUES.deadLetters, [deadLetterRecord(name)]);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(alertsAt(hook)).toHaveLength(1);
  });
});

describe("bad input", () => {
  it("refuses limits out of range with 422 naming the path, and stores nothing", async () => {
    const response = await admin("/rules", {
      method: "PUT",
      body: JSON.stringify({
        ...EXAMPLE_RULES,
        destinations: {
          ...EXAMPLE_RULES.destinations,
          wms: { url: "https://wms.test/", rateLimit: { perSecond: 5000 } },
        },
      }),
    });
    expect(response.status).toBe(422);
    expect(await response.json()).toMatchObject({
      error: "rules_invalid",
      issues: [{ path: "destinations.wms.rateLimit.perSecond" }],
    });
  });
});

describe("probe now", () => {
  it("sends the oldest held delivery at once for a destination the circuit paused, and refuses one paused by hand", async () => {
    const name = fresh("probe");
    const url = `https://${name}.test/`;
    await rulesWith({ [name]: { url, maxAttempts: 10, circuit: { failures: 1, cooldownSeconds: 3600 } } });
    answer = (request) =>
      request.url === url && seen.filter((s) => s.url === url).length === 1
        ? new Response("down", { status: 503 })
        : new Response("ok");
    await deliver([deliveryMessage(name)]);
    const waiting = deliveryMessage(name);
    await deliver([waiting]);
    expect(to(url)).toHaveLength(1);
    // An hour's cool-down: without the probe nothing would go before then.
    const probed = await admin(`/destinations/${name}/probe`, { method: "POST" });
    expect(probed.status).toBe(200);
    expect(
      answerSchema("POST /admin/destinations/:name/probe", 200)!.safeParse(await probed.json()).error,
    ).toBeUndefined();
    await eventually(() => expect(to(url).map((s) => s.deliveryId)).toContain(waiting.deliveryId), 10_000);
    await eventually(async () =>
      expect(await (await admin(`/destinations/${name}`)).json()).toMatchObject({ state: "active" }),
    );

    expect((await admin(`/destinations/${name}/pause`, { method: "POST" })).status).toBe(200);
    const refused = await admin(`/destinations/${name}/probe`, { method: "POST" });
    expect(refused.status).toBe(409);
    expect(await refused.json()).toMatchObject({ error: "not_paused_by_circuit" });
    expect((await admin(`/destinations/${name}/resume`, { method: "POST" })).status).toBe(200);
  });
});
