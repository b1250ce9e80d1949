/**
 * Flow control and alerts, end to end: `wrangler dev` with real receivers. A `perSecond` limit measured at
 * the receiver; a receiver counting requests in flight never sees more than `concurrency`; a failing receiver
 * trips the breaker, an alert reaches the ALERT_WEBHOOK receiver and the tech contact's (captured) email, the
 * receiver heals, the probe succeeds, what was held arrives in order as first attempts, a recovered alert
 * follows; a pause and resume by hand.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Behaviour, ok, type Receiver, startReceiver } from "./lib/receivers.ts";
import { envelope, type Relay, SECRETS, startRelay, waitFor } from "./lib/relay.ts";

let relay: Relay;
const receivers: Record<string, Receiver> = {};
let brokenHealthy = false;

const order = (n: number, destination: string) => ({
  Action: "OrderCreated",
  Details: { OrderNumber: `${destination}-${n}`, OrderType: "NormalOrder", To: destination },
});
/** Sends `count` calls, one notification each, routed to `destination`; resolves with their call ids in order. */
async function send(destination: string, count: number, from = 0): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const body = envelope([order(from + i, destination)]);
    const response = await relay.send(body);
    expect(response.status).toBe(202);
    ids.push(JSON.parse(body).Id);
  }
  return ids;
}
const callIdOf = (deliveryId: string | undefined) => deliveryId?.split(".")[0];
const alerts = () => receivers.alerts!.requests.map((r) => JSON.parse(r.body.toString()) as Record<string, unknown>);
const destination = async (name: string) =>
  (await (await relay.admin(`/destinations/${name}`)).json()) as Record<string, unknown>;

beforeAll(async () => {
  receivers.rated = await startReceiver("rated", ok);
  receivers.narrow = await startReceiver("narrow", () => ({ status: 200, delayMs: 300 }));
  const broken: Behaviour = () => (brokenHealthy ? { status: 200 } : { status: 503, body: "maintenance" });
  receivers.broken = await startReceiver("broken", broken);
  receivers.manual = await startReceiver("manual", ok);
  receivers.alerts = await startReceiver("alerts", ok);
  relay = await startRelay({
    vars: {
      RETRY_SCHEDULE: "1",
      RULES_CACHE_SECONDS: "0",
      ALERT_EMAIL_FROM: "relay@example.com",
      PUBLIC_URL: "https://relay.example.com",
    },
    secrets: { ...SECRETS, ALERT_WEBHOOK: receivers.alerts.url },
  });
  const put = await relay.admin("/rules", {
    method: "PUT",
    body: JSON.stringify({
      version: 1,
      destinations: {
        rated: { url: receivers.rated.url, rateLimit: { perSecond: 5 } },
        narrow: { url: receivers.narrow.url, concurrency: 2 },
        broken: {
          url: receivers.broken.url,
          maxAttempts: 20,
          circuit: { failures: 3, cooldownSeconds: 3 },
          techContact: "wms-team@example.com",
        },
        manual: { url: receivers.manual.url },
      },
      routes: ["rated", "narrow", "broken", "manual"].map((name) => ({
        name,
        actions: ["OrderCreated"],
        where: { "Details.To": name },
        to: [name],
      })),
    }),
  });
  expect(put.status).toBe(200);
}, 120_000);

afterAll(async () => {
  await relay?.stop();
  await Promise.all(Object.values(receivers).map((r) => r.stop()));
});

describe("flow control on wrangler dev", () => {
  it("delivers a perSecond-limited destination at its rate, in order, each once", async () => {
    const ids = await send("rated", 30);
    await waitFor("30 deliveries at rated", () => (receivers.rated!.requests.length >= 30 ? true : undefined), {
      timeoutMs: 60_000,
    });
    const got = receivers.rated!.requests;
    expect(got.map((r) => callIdOf(r.deliveryId))).toEqual(ids);
    expect(got.every((r) => r.attempt === 1 && r.seen === 1)).toBe(true);
    const seconds = (got.at(-1)!.at - got[0]!.at) / 1000;
    const rate = (got.length - 1) / seconds;
    expect(rate).toBeGreaterThan(5 * 0.9);
    expect(rate).toBeLessThanOrEqual(5 * 1.1);
    // Nowhere much faster than the limit: any 6 in a row span about a second (arrival jitter aside).
    for (let i = 5; i < got.length; i++) expect(got[i]!.at - got[i - 5]!.at).toBeGreaterThanOrEqual(900);
  }, 90_000);

  it("never has more requests in flight at a concurrency-limited receiver than allowed", async () => {
    const ids = await send("narrow", 12);
    await waitFor("12 answered at narrow", () => (receivers.narrow!.delivered().length >= 12 ? true : undefined));
    expect(receivers.narrow!.maxInFlight()).toBe(2);
    expect(new Set(receivers.narrow!.requests.map((r) => callIdOf(r.deliveryId)))).toEqual(new Set(ids));
    expect(receivers.narrow!.requests).toHaveLength(12);
  }, 90_000);
});

describe("the circuit breaker and alerts on wrangler dev", () => {
  it("pauses a failing receiver, alerts by webhook and email, probes, then sends what it held in order", async () => {
    const failing = await send("broken", 3);
    await waitFor("the breaker to open", async () =>
      (await destination("broken")).state === "paused" ? true : undefined,
    );
    const pausedAt = Date.now();
    const attemptsBefore = receivers.broken!.requests.length;
    expect(attemptsBefore).toBe(3);
    const held = await send("broken", 5, 3);
    await waitFor("5 held", async () => (((await destination("broken")).held as number) >= 5 ? true : undefined));

    // The alert, at the ALERT_WEBHOOK receiver (Slack-shaped: `text` first) and by email to the tech contact.
    const paused = await waitFor("the paused alert", () => alerts().find((a) => a.type === "destination_paused"));
    expect(paused).toMatchObject({
      destination: "broken",
      count: 3,
      lastStatus: 503,
      reason: "circuit",
      consoleUrl: "https://relay.example.com/console/destinations/broken",
    });
    expect(paused.text).toMatch(/^broken is paused: 3 attempts in a row failed since .* UTC, the last: HTTP 503\./);
    const mail = await waitFor("the captured email", () => {
      const match = /To: wms-team@example\.com[\s\S]*?Subject: (.*)[\s\S]*?Text: (\S+)/.exec(relay.dev.output());
      return match === null ? undefined : { subject: match[1]!.trim(), file: match[2]! };
    });
    expect(mail.subject).toBe("extend-relay: broken is paused after 3 failed attempts");
    expect(readFileSync(mail.file, "utf8")).toBe(paused.text);

    // Nothing is attempted while paused: not the held ones, not the retries of the three that failed.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(receivers.broken!.requests.slice(attemptsBefore).every((r) => r.at >= pausedAt + 3000 - 100)).toBe(true);

    brokenHealthy = true;
    await waitFor("everything at broken", () => (receivers.broken!.delivered().length >= 8 ? true : undefined));
    const after = receivers.broken!.requests.slice(attemptsBefore);
    // The held deliveries went out in arrival order, each as its first attempt; the three that had failed once
    // came back from the queue during the pause and were held too: their second attempt.
    const firsts = after.filter((r) => r.attempt === 1);
    expect(firsts.map((r) => callIdOf(r.deliveryId))).toEqual(held);
    expect(
      after
        .filter((r) => r.attempt === 2)
        .map((r) => callIdOf(r.deliveryId))
        .sort(),
    ).toEqual([...failing].sort());
    expect(after).toHaveLength(8);

    const recovered = await waitFor("the recovered alert", () =>
      alerts().find((a) => a.type === "destination_recovered"),
    );
    expect(recovered.text).toContain("broken has recovered");
    expect(
      alerts()
        .filter((a) => a.destination === "broken")
        .map((a) => a.type),
    ).toEqual(["destination_paused", "destination_recovered"]);
    expect(await destination("broken")).toMatchObject({ state: "active", failures: 0, held: 0 });
    // The ledger shows every one delivered (a few seconds later); the held ones with a single attempt.
    for (const id of held) {
      const trace = await waitFor(`call ${id} delivered in the ledger`, async () => {
        const found = (await (await relay.admin(`/calls/${id}`)).json()) as {
          deliveries: { status: string; attemptCount: number }[];
        };
        return found.deliveries?.[0]?.status === "delivered" ? found : undefined;
      });
      expect(trace.deliveries).toMatchObject([{ status: "delivered", attemptCount: 1 }]);
    }
  }, 120_000);

  it("holds everything while paused by hand and sends it in order on resume", async () => {
    const pause = await relay.admin("/destinations/manual/pause", { method: "POST" });
    expect(await pause.json()).toMatchObject({ name: "manual", state: "paused", pausedBy: "hand" });
    // A pause reaches every isolate within the gate cache's 2 s.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const ids = await send("manual", 4);
    await waitFor("4 held", async () => ((await destination("manual")).held === 4 ? true : undefined));
    expect(receivers.manual!.requests).toHaveLength(0);
    const byHand = await waitFor("the paused-by-hand alert", () =>
      alerts().find((a) => a.type === "destination_paused" && a.destination === "manual"),
    );
    expect(byHand.text).toContain("manual was paused by hand");
    const resume = await relay.admin("/destinations/manual/resume", { method: "POST" });
    expect(await resume.json()).toMatchObject({ state: "active" });
    await waitFor("4 at manual", () => (receivers.manual!.requests.length >= 4 ? true : undefined));
    expect(receivers.manual!.requests.map((r) => [callIdOf(r.deliveryId), r.attempt])).toEqual(
      ids.map((id) => [id, 1]),
    );
    expect((await relay.admin("/destinations/nowhere/pause", { method: "POST" })).status).toBe(404);
  }, 90_000);
});
