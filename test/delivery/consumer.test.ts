import { env } from "cloudflare:workers";
import { createHmac } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { version } from "../../package.json";
import { GiveUp, prepareRequest } from "../../src/delivery/request.ts";
import { MAX_CONNECTIONS } from "../../src/delivery/slots.ts";
import { LEDGER_TRIES } from "../../src/ledger/consumer.ts";
import { getDeadLetter } from "../../src/ledger/dead-letters.ts";
import { getDelivery } from "../../src/ledger/deliveries.ts";
import type { Stats } from "../../src/ledger/views.ts";
import { redrive, waiting } from "../../src/ledger/waiting.ts";
import { LEDGER_TIMEOUT_MS } from "../../src/ledger/write.ts";
import type { CallRecord } from "../../src/queues/call.ts";
import type { DeadLetter } from "../../src/queues/dead-letter.ts";
import type { AttemptRecord, LedgerMessage } from "../../src/queues/ledger.ts";
import { QUEUES } from "../../src/queues/names.ts";
import type { Destination } from "../../src/rules/schema.ts";
import {
  admin,
  type ConsumeResult,
  consume,
  deliveryMessage,
  EXAMPLE_RULES,
  eventually,
  failingLedger,
  freshId,
  putRules,
  SAMPLE_NOTIFICATIONS,
  sentBodies,
  signedPost,
} from "../helpers.ts";

const RULES = {
  ...EXAMPLE_RULES,
  destinations: {
    ...EXAMPLE_RULES.destinations,
    slow: { url: "https://slow.test/", timeoutMs: 1000, maxAttempts: 3 },
    off: { url: "https://off.test/", enabled: false },
    keyless: { url: "https://keyless.test/", signing: { scheme: "ms-signature", secret: "NOT_SET_ANYWHERE" } },
  },
};

let fetchSpy: ReturnType<typeof vi.spyOn<typeof globalThis, "fetch">>;
/** The requests the consumer sent, with their exact body bytes, in order. */
let captured: { request: Request; body: Uint8Array }[];
let deadLetterSend: ReturnType<typeof vi.spyOn>;
/** What each test's receivers answer. */
let answer: (request: Request, init?: RequestInit) => Response | Promise<Response>;

beforeEach(async () => {
  await putRules(RULES);
  answer = () => new Response("ok");
  captured = [];
  fetchSpy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    captured.push({ request, body: new Uint8Array(await request.clone().arrayBuffer()) });
    return answer(request, init);
  });
  deadLetterSend = vi.spyOn(env.DEAD_LETTERS, "send");
});
afterEach(() => vi.restoreAllMocks());

/** Runs the consumer on `messages` as their attempt number `attempt`. */
const deliver = (messages: unknown[], attempt = 1, overrides = {}) =>
  consume(
    QUEUES.deliveries,
    messages.map((m) => {
      if (typeof m !== "object" || m === null) return m;
      if ("head" in m) return { ...m, attempts: attempt - 1 };
      if ("delivery" in m) return { ...m, delivery: { ...(m.delivery as object), attempts: attempt - 1 } };
      return m;
    }),
    { env: overrides },
  );
/** The delays of the next attempts the consumer put on the queue. */
const delays = (result: ConsumeResult) => result.requeued.map((r) => r.delaySeconds);
/** A destination's defaults, as the schema fills them in. */
const DEFAULTS = {
  signing: { scheme: "none" },
  headers: {},
  timeoutMs: 10_000,
  maxAttempts: 12,
  mode: "envelope",
  enabled: true,
};
const deadLetters = () => sentBodies<DeadLetter>(deadLetterSend);
const text = (body: Uint8Array) => new TextDecoder().decode(body);

describe("the request a destination receives", () => {
  it("is the sender's envelope shape with the matched notifications, our headers and an ms-signature over the bytes", async () => {
    const message = deliveryMessage("wms");
    const result = await deliver([message], 2);
    expect(result.explicitAcks).toEqual(["m0"]);
    const [{ request, body }] = captured as [{ request: Request; body: Uint8Array }];
    expect(request.method).toBe("POST");
    expect(request.url).toBe("https://wms.test/extend");
    expect(request.redirect).toBe("manual");
    expect(JSON.parse(text(body))).toEqual({
      Id: message.callId,
      Attempt: 2,
      Properties: { NotificationId: "n-1" },
      Extra: "kept",
      Notifications: SAMPLE_NOTIFICATIONS,
    });
    expect(request.headers.get("content-type")).toBe("application/json");
    expect(request.headers.get("user-agent")).toBe(`extend-relay/${version}`);
    expect(request.headers.get("x-relay-delivery-id")).toBe(message.deliveryId);
    expect(request.headers.get("x-relay-attempt")).toBe("2");
    const expected = `sha256=${createHmac("sha256", env.WMS_SECRET).update(body).digest("hex").toUpperCase()}`;
    expect(request.headers.get("ms-signature")).toBe(expected);
  });

  it("carries static and secret headers and a Standard Webhooks signature the official package verifies", async () => {
    const message = deliveryMessage("shop");
    await deliver([message]);
    const [{ request, body }] = captured as [{ request: Request; body: Uint8Array }];
    expect(request.headers.get("x-api-key")).toBe(env.SHOP_API_KEY);
    expect(request.headers.get("x-source")).toBe("extend");
    expect(request.headers.get("webhook-id")).toBe(message.deliveryId);
    expect(Math.abs(Number(request.headers.get("webhook-timestamp")) - Date.now() / 1000)).toBeLessThan(60);
    const headers = Object.fromEntries(request.headers);
    const verified = new Webhook(env.SHOP_SECRET).verify(text(body), headers);
    expect(verified).toMatchObject({ Id: message.callId, Notifications: SAMPLE_NOTIFICATIONS });
    expect(() => new Webhook(`whsec_${btoa("another secret entirely")}`).verify(text(body), headers)).toThrow();
  });

  it("passes on the sender's own text: digits, escapes, key order, repeated keys and line ends as written", async () => {
    const notification = `{"Action":"OrderCreated",\r\n  "Details":{"OrderNumber":12345678901234567890,"OrderType":"NormalOrder","Amount":100.50,"Scale":1.0e2,"Zero":-0,"Name":"\\u00c5sa \\/ \\"A\\"","Dup":1,"Dup":2}}`;
    const other = '{"Action":"CustomerCreated","Details":{"CustomerNumber":"7"}}';
    const id = freshId();
    const body = `{"Id":"${id}", "Top":1.50, "Attempt":1,"Properties":{"NotificationId":"n"},"Notifications":[${other},\r\n ${notification}]}`;
    expect((await signedPost(body)).status).toBe(202);
    await vi.waitFor(
      () => expect(captured.some(({ request }) => request.url === "https://wms.test/extend")).toBe(true),
      { timeout: 15_000, interval: 50 },
    );
    const sent = text(captured.find(({ request }) => request.url === "https://wms.test/extend")!.body);
    // Only the notification routed to wms, exactly as written; the relay's Attempt in the sender's place.
    expect(sent).toBe(
      `{"Id":"${id}","Top":1.50,"Attempt":1,"Properties":{"NotificationId":"n"},"Notifications":[${notification}]}`,
    );
  });

  it("reads a message an older relay enqueued (version 1, contentType json)", async () => {
    const id = freshId();
    const legacy = {
      v: 1,
      deliveryId: `${id}.wms`,
      destination: "wms",
      routes: ["orders"],
      envelope: { Id: id, Attempt: 1, Properties: { NotificationId: "n" } },
      notifications: SAMPLE_NOTIFICATIONS,
      receivedAt: Date.now(),
    };
    const result = await consume(QUEUES.deliveries, [legacy], { encode: false });
    expect(result.explicitAcks).toEqual(["m0"]);
    expect(JSON.parse(text(captured[0]!.body))).toEqual({ ...legacy.envelope, Notifications: SAMPLE_NOTIFICATIONS });
    expect(captured[0]!.request.headers.get("x-relay-delivery-id")).toBe(`${id}.wms`);
  });
});

describe("outcomes", () => {
  it.each([500, 503, 408, 425, 429])("retries %i with the RETRY_SCHEDULE delay", async (status) => {
    answer = () => new Response("no", { status });
    const result = await deliver([deliveryMessage("wms")]);
    // RETRY_SCHEDULE is "1,2,3" in tests: attempt 1 waits 1 s ± 20%, which rounds to 1.
    expect(delays(result)).toEqual([1]);
    expect(result.requeued[0]!.body).toMatchObject({ deliveryId: result.requeued[0]!.body.deliveryId, attempts: 1 });
    expect(result.explicitAcks).toEqual(["m0"]);
    expect(result.retryMessages).toEqual([]);
    expect(deadLetterSend).not.toHaveBeenCalled();
  });

  it("honours a Retry-After longer than the backoff, in seconds and as an HTTP date", async () => {
    answer = () => new Response("slow down", { status: 429, headers: { "Retry-After": "120" } });
    expect(delays(await deliver([deliveryMessage("wms")]))).toEqual([120]);
    const inFiveMinutes = new Date(Date.now() + 300_000).toUTCString();
    answer = () => new Response("down", { status: 503, headers: { "Retry-After": inFiveMinutes } });
    const [retry] = (await deliver([deliveryMessage("wms")])).requeued;
    expect(retry!.delaySeconds).toBeGreaterThanOrEqual(298);
    expect(retry!.delaySeconds).toBeLessThanOrEqual(300);
  });

  it.each(["0", new Date(Date.now() - 3_600_000).toUTCString()])(
    "never waits less than the backoff for Retry-After: %s",
    async (retryAfter) => {
      answer = () => new Response("busy", { status: 503, headers: { "Retry-After": retryAfter } });
      // Attempt 3 of the test schedule "1,2,3": 3 s ± 20 %.
      const [retry] = (await deliver([deliveryMessage("wms")], 3)).requeued;
      expect(retry!.delaySeconds).toBeGreaterThanOrEqual(2);
      expect(retry!.delaySeconds).toBeLessThanOrEqual(4);
    },
  );

  it.each([
    [410, "HTTP 410"],
    [400, "HTTP 400"],
    [302, "HTTP 302: redirects are not followed"],
  ])("dead-letters %i at once as a permanent failure", async (status, reason) => {
    answer = () =>
      new Response(null, { status, headers: status === 302 ? { Location: "https://elsewhere.test/" } : {} });
    const message = deliveryMessage("wms");
    const result = await deliver([message]);
    expect(result.explicitAcks).toEqual(["m0"]);
    expect(fetchSpy).toHaveBeenCalledTimes(1);
    const [record] = deadLetters();
    expect(record).toMatchObject({
      deliveryId: message.deliveryId,
      destination: "wms",
      reason: "permanent_failure",
      lastStatus: status,
      attempts: 1,
      source: "relay",
      message,
    });
    expect(record!.detail).toContain(reason);
  });

  it("retries a network error", async () => {
    answer = () => {
      throw new TypeError("Network connection lost.");
    };
    const result = await deliver([deliveryMessage("wms")]);
    expect(delays(result)).toHaveLength(1);
  });

  it("gives up after the destination's timeout and retries", async () => {
    fetchSpy.mockImplementation(
      (_input, init) =>
        new Promise((_, reject) => init!.signal!.addEventListener("abort", () => reject(init!.signal!.reason))),
    );
    const started = Date.now();
    const result = await deliver([deliveryMessage("slow")]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(delays(result)).toEqual([1]);
  });

  it("dead-letters when maxAttempts is used up, and the ledger shows it dead", async () => {
    answer = () => new Response("down", { status: 503 });
    const message = deliveryMessage("slow"); // maxAttempts 3
    const result = await deliver([message], 3);
    expect(result.requeued).toEqual([]);
    expect(result.explicitAcks).toEqual(["m0"]);
    const [record] = deadLetters();
    expect(record).toMatchObject({ reason: "attempts_exhausted", attempts: 3, lastStatus: 503 });
    expect(record!.detail).toBe("Attempt 3 of 3 failed (HTTP 503); no attempts are left.");
    // The ledger has it from the consumer's own write; the dead-letter record (sent through the real queue)
    // fills in the rest.
    const dead = await eventually(async () => {
      const found = await getDeadLetter(env.LEDGER, env.PAYLOADS, message.deliveryId);
      expect(found).not.toBeNull();
      return found!;
    });
    expect(dead).toMatchObject({ record: { reason: "attempts_exhausted", attempts: 3, lastStatus: 503 } });
  });

  it("dead-letters a destination that was removed or disabled after enqueue, without calling it", async () => {
    const gone = deliveryMessage("deleted-since");
    const off = deliveryMessage("off");
    const result = await deliver([gone, off]);
    expect(fetchSpy).not.toHaveBeenCalled();
    expect(result.explicitAcks.sort()).toEqual(["m0", "m1"]);
    expect(deadLetters().map((r) => [r.deliveryId, r.reason])).toEqual(
      expect.arrayContaining([
        [gone.deliveryId, "destination_missing"],
        [off.deliveryId, "destination_disabled"],
      ]),
    );
  });

  it("dead-letters with a clear reason when the signing secret is missing from the environment", async () => {
    const result = await deliver([deliveryMessage("keyless")]);
    expect(fetchSpy).not.toHaveBeenCalled();
    expect(result.explicitAcks).toEqual(["m0"]);
    const [record] = deadLetters();
    expect(record).toMatchObject({ reason: "secret_missing" });
    expect(record!.detail).toBe("The Worker secret NOT_SET_ANYWHERE (signing.secret) is not set.");
  });

  it("dead-letters a message it cannot read, keeping what it was", async () => {
    for (const junk of [{ hello: "world" }, "not json at all"]) {
      deadLetterSend.mockClear();
      expect((await deliver([junk])).explicitAcks).toEqual(["m0"]);
      expect(deadLetters()[0]).toMatchObject({
        reason: "unreadable_message",
        deliveryId: "unreadable.m0",
        raw: typeof junk === "string" ? junk : JSON.stringify(junk),
      });
    }
  });

  it("keeps a message when the dead-letter queue cannot take it", async () => {
    answer = () => new Response(null, { status: 410 });
    deadLetterSend.mockRejectedValue(new Error("Queue send failed"));
    const result = await deliver([deliveryMessage("wms")]);
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages).toHaveLength(1);
    expect(result.requeued).toEqual([]);
  });

  it("settles each message of a batch on its own, concurrently", async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    answer = async (request) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, 20));
      inFlight--;
      return new Response(null, { status: request.url.startsWith("https://shop.test") ? 500 : 200 });
    };
    const result = await deliver([deliveryMessage("wms"), deliveryMessage("shop"), deliveryMessage("wms")]);
    expect(result.explicitAcks.sort()).toEqual(["m0", "m1", "m2"]);
    expect(result.requeued.map((r) => [r.body.destination, r.delaySeconds])).toEqual([["shop", 1]]);
    expect(maxInFlight).toBe(3);
  });
});

describe("secrets at delivery", () => {
  async function deliverWithHeaderSecret(value: string) {
    await putRules({
      version: 1,
      destinations: { hook: { url: "https://hook.test/", headers: { "X-Key": { secret: "HOOK_KEY" } } } },
      routes: [],
    });
    const logs = [vi.spyOn(console, "log"), vi.spyOn(console, "warn"), vi.spyOn(console, "error")];
    const result = await deliver([deliveryMessage("hook")], 1, { HOOK_KEY: value });
    const logged = logs.flatMap((spy) => spy.mock.calls.map((call) => call.join(" "))).join("\n");
    return { result, logged };
  }

  it.each([
    ["a line break", "key\r\nX-Injected: yes"],
    ["a NUL", "key\u0000"],
    ["a character outside Latin-1", "nyckel-ĀŁ"],
    ["a character outside ASCII", "nyckel-åäö"],
  ])("dead-letters at once, as secret_invalid naming the secret, a header secret with %s", async (_, value) => {
    const { result, logged } = await deliverWithHeaderSecret(value);
    expect(fetchSpy).not.toHaveBeenCalled();
    expect(result.explicitAcks).toEqual(["m0"]);
    expect(result.requeued).toEqual([]);
    const [record] = deadLetters();
    expect(record).toMatchObject({ reason: "secret_invalid", attempts: 1 });
    expect(record!.detail).toContain("HOOK_KEY");
    expect(JSON.stringify(record)).not.toContain(value);
    expect(logged).not.toContain(value);
  });

  it.each([
    ["an empty key", "whsec_"],
    ["a key that is not base64", "whsec_not*base64!"],
  ])("dead-letters at once a Standard Webhooks secret with %s", async (_, value) => {
    const result = await deliver([deliveryMessage("shop")], 1, { SHOP_SECRET: value });
    expect(fetchSpy).not.toHaveBeenCalled();
    expect(result.explicitAcks).toEqual(["m0"]);
    const [record] = deadLetters();
    expect(record).toMatchObject({ reason: "secret_invalid" });
    expect(record!.detail).toContain("SHOP_SECRET");
    expect(record!.detail).toContain("whsec_ followed by base64");
  });

  it("never sends the relay's own secrets, even if rules naming them got past validation", async () => {
    // The rules schema refuses such documents (test/rules/schema.test.ts) and so does the KV loader; this is
    // the second lock, on the request itself.
    for (const [name, destination] of [
      ["ADMIN_TOKEN", { headers: { "X-Token": { secret: "ADMIN_TOKEN" } } }],
      ["EXTEND_WEBHOOK_SECRET", { signing: { scheme: "ms-signature", secret: "EXTEND_WEBHOOK_SECRET" } }],
      ["EXTEND_WEBHOOK_SECRET_PREVIOUS", { url: { secret: "EXTEND_WEBHOOK_SECRET_PREVIOUS" } }],
    ] as const) {
      const unchecked = { ...DEFAULTS, url: "https://evil.test/", ...destination } as Destination;
      const attempt = prepareRequest(deliveryMessage("evil"), unchecked, new Uint8Array(), 1, env, 0);
      await expect(attempt).rejects.toBeInstanceOf(GiveUp);
      await expect(attempt).rejects.toMatchObject({
        reason: "secret_not_allowed",
        message: expect.stringContaining(name),
      });
    }
  });

  it("sends to a URL kept in a secret, and dead-letters one that is not an https URL without printing it", async () => {
    await putRules({ version: 1, destinations: { slack: { url: { secret: "SLACK_URL" } } }, routes: [] });
    const hook = "https://hooks.slack.test/services/T000/B000/XXXXSECRET";
    expect((await deliver([deliveryMessage("slack")], 1, { SLACK_URL: hook })).explicitAcks).toEqual(["m0"]);
    expect(captured.map(({ request }) => request.url)).toEqual([hook]);

    for (const bad of [
      "http://hooks.slack.test/services/XXXXSECRET",
      "not a url XXXXSECRET",
      "https://user:XXXXSECRET@x.test/",
    ]) {
      deadLetterSend.mockClear();
      const result = await deliver([deliveryMessage("slack")], 1, { SLACK_URL: bad });
      expect(result.explicitAcks).toEqual(["m0"]);
      const [record] = deadLetters();
      expect(record).toMatchObject({ reason: "secret_invalid" });
      expect(record!.detail).toContain("SLACK_URL");
      expect(JSON.stringify(record)).not.toContain("XXXXSECRET");
    }
  });

  it("keeps a secret URL out of the error it records when the receiver cannot be reached", async () => {
    await putRules({ version: 1, destinations: { slack: { url: { secret: "SLACK_URL" } } }, routes: [] });
    const hook = "https://hooks.slack.test/services/T000/B000/XXXXSECRET";
    answer = (request) => {
      throw new TypeError(`Network connection lost while fetching ${request.url}`);
    };
    const warn = vi.spyOn(console, "warn");
    const result = await deliver([deliveryMessage("slack")], 3, { SLACK_URL: hook, RETRY_SCHEDULE: "1" });
    expect(delays(result)).toHaveLength(1);
    const logged = warn.mock.calls.map((call) => call.join(" ")).join("\n");
    expect(logged).toContain("[secret SLACK_URL]");
    expect(logged).not.toContain("XXXXSECRET");
  });
});

describe("connections", () => {
  it(`never has more than ${MAX_CONNECTIONS} requests out at once, and starts each timeout only when its request goes out`, async () => {
    // The runtime's rule, emulated: at most 6 open connections per invocation, the rest wait for one.
    let open = 0;
    let most = 0;
    const waiting: (() => void)[] = [];
    answer = async (_request, init) => {
      if (open >= 6) await new Promise<void>((resolve) => waiting.push(resolve));
      open++;
      most = Math.max(most, open);
      try {
        // Each receiver takes 600 ms of the destination's 1000 ms timeout.
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, 600);
          init?.signal?.addEventListener("abort", () => {
            clearTimeout(timer);
            reject(init.signal!.reason);
          });
        });
        return new Response("ok");
      } finally {
        open--;
        waiting.shift()?.();
      }
    };
    const messages = Array.from({ length: 10 }, () => deliveryMessage("slow"));
    const result = await deliver(messages);
    expect(most).toBeLessThanOrEqual(MAX_CONNECTIONS);
    expect(result.requeued).toEqual([]);
    expect(result.explicitAcks).toHaveLength(10);
  });
});

describe("a bad deploy", () => {
  it("keeps delivering when an unrelated var is bad, and retries on the default schedule when RETRY_SCHEDULE is", async () => {
    const ok = await deliver([deliveryMessage("wms")], 1, { MAX_BODY_BYTES: "lots" });
    expect(ok.explicitAcks).toEqual(["m0"]);
    answer = () => new Response("down", { status: 503 });
    const retried = await deliver([deliveryMessage("wms")], 1, { RETRY_SCHEDULE: "10,30,2m" });
    // The default schedule's first wait: 10 s ± 20 %.
    expect(retried.requeued[0]!.delaySeconds).toBeGreaterThanOrEqual(8);
    expect(retried.requeued[0]!.delaySeconds).toBeLessThanOrEqual(12);
  });
});

/** Empties the ledger's waiting room (R2), so that each test counts only what it parked. */
async function clearWaiting(): Promise<void> {
  const listed = await env.PAYLOADS.list({ prefix: "ledger/waiting/" });
  if (listed.objects.length > 0) await env.PAYLOADS.delete(listed.objects.map((o) => o.key));
}

describe("the ledger", () => {
  beforeEach(clearWaiting);
  const callRecord = (id: string): CallRecord => ({
    kind: "call",
    v: 2,
    id,
    at: Date.now(),
    attempt: "1",
    outcome: "accepted",
    summary: { notifications: 1, deliveries: 0, actions: ["OrderCreated"], keys: [] },
  });

  it("gets what a batch means for it (call records carried, every attempt) in one message on the ledger queue", async () => {
    const id = freshId();
    const sendBatch = vi.spyOn(env.LEDGER_RECORDS, "sendBatch").mockResolvedValue(undefined as never);
    const plain = deliveryMessage("wms");
    const withRecord = { delivery: deliveryMessage("shop"), call: callRecord(freshId()) };
    const result = await deliver([plain, withRecord, callRecord(id)]);
    expect(result.explicitAcks.sort()).toEqual(["m0", "m1", "m2"]);
    expect(sendBatch).toHaveBeenCalledTimes(1);
    const [[batch]] = sendBatch.mock.calls as [[MessageSendRequest<string>[]]];
    expect(batch).toHaveLength(1);
    const { records } = JSON.parse(batch[0]!.body) as LedgerMessage;
    expect(
      records
        .map((r) => (r.kind === "call" ? `call ${r.id}` : r.kind === "dead" ? "dead" : `attempt ${r.deliveryId}`))
        .sort(),
    ).toEqual(
      [
        `call ${id}`,
        `call ${withRecord.call.id}`,
        `attempt ${plain.deliveryId}`,
        `attempt ${withRecord.delivery.deliveryId}`,
      ].sort(),
    );
  });

  it("does not carry the call's record on to the next attempt or into a dead letter", async () => {
    answer = () => new Response(null, { status: 503 });
    const first = await deliver([{ delivery: deliveryMessage("wms"), call: callRecord(freshId()) }]);
    // consume() checks that what it requeued carries no call record.
    expect(first.requeued).toHaveLength(1);
    answer = () => new Response(null, { status: 410 });
    await deliver([{ delivery: deliveryMessage("wms"), call: callRecord(freshId()) }]);
    expect(deadLetters()[0]!.message).toBeDefined();
    expect(deadLetters()[0]).not.toHaveProperty("call");
    expect(deadLetters()[0]!.message).not.toHaveProperty("record");
  });

  it("when the ledger queue is down, writes the records at once; when D1 is down too, they wait in R2; only all three down loses them, logged", async () => {
    vi.spyOn(env.LEDGER_RECORDS, "sendBatch").mockRejectedValue(new Error("Queue send failed"));
    const message = deliveryMessage("wms");
    expect((await deliver([message])).explicitAcks).toEqual(["m0"]);
    expect(await getDelivery(env.LEDGER, env.PAYLOADS, message.deliveryId)).toMatchObject({
      status: "delivered",
      attemptCount: 1,
    });

    const waitingFor = deliveryMessage("wms");
    expect((await deliver([waitingFor], 1, { LEDGER: failingLedger() })).explicitAcks).toEqual(["m0"]);
    expect(await waiting(env.PAYLOADS)).toMatchObject({ records: 1, objects: 1 });
    expect(await redrive(env.LEDGER, env.PAYLOADS)).toMatchObject({ written: 1, waiting: 0, more: false });
    expect(await getDelivery(env.LEDGER, env.PAYLOADS, waitingFor.deliveryId)).toMatchObject({ status: "delivered" });

    const error = vi.spyOn(console, "error");
    vi.spyOn(env.PAYLOADS, "put").mockRejectedValue(new Error("R2 is down"));
    const lost = deliveryMessage("wms");
    const result = await deliver([lost], 1, { LEDGER: failingLedger() });
    expect(
      captured.filter(({ request }) => request.headers.get("x-relay-delivery-id") === lost.deliveryId),
    ).toHaveLength(1);
    expect(result.explicitAcks).toEqual(["m0"]);
    const events = error.mock.calls.map(([line]) => JSON.parse(String(line)));
    expect(events).toContainEqual(
      expect.objectContaining({ event: "ledger_records_lost", deliveries: [lost.deliveryId] }),
    );
  });
  it("keeps a call record of its own while neither the ledger queue, the ledger nor R2 take it, however often it comes back", async () => {
    vi.spyOn(env.LEDGER_RECORDS, "sendBatch").mockRejectedValue(new Error("Queue send failed"));
    vi.spyOn(env.PAYLOADS, "put").mockRejectedValue(new Error("R2 is down"));
    const record = callRecord(freshId());
    for (const attempts of [1, LEDGER_TRIES, 50]) {
      const kept = await consume(QUEUES.deliveries, [record], { attempts, env: { LEDGER: failingLedger() } });
      expect(kept.explicitAcks).toEqual([]);
      expect(kept.retryMessages).toEqual([{ msgId: "m0", delaySeconds: 30 }]);
    }
  });
});

describe("the ledger queue's consumer", () => {
  beforeEach(clearWaiting);
  const attempt = (deliveryId: string): AttemptRecord => ({
    kind: "attempt",
    deliveryId,
    destination: "wms",
    callId: deliveryId.split(".")[0]!,
    routes: ["orders"],
    indices: [0],
    receivedAt: Date.now(),
    run: 0,
    attempt: 1,
    at: Date.now(),
    status: 200,
    durationMs: 5,
    outcome: "delivered",
  });
  const ledgerMessage = (...records: LedgerMessage["records"]): LedgerMessage => ({ kind: "ledger", records });

  it("writes every record of a batch in one db.batch", async () => {
    const ids = [`${freshId()}.wms`, `${freshId()}.wms`, `${freshId()}.wms`];
    const batch = vi.spyOn(env.LEDGER, "batch");
    const result = await consume(QUEUES.ledger, [
      ledgerMessage(attempt(ids[0]!), attempt(ids[1]!)),
      ledgerMessage(attempt(ids[2]!)),
    ]);
    expect(result.explicitAcks.sort()).toEqual(["m0", "m1"]);
    expect(batch).toHaveBeenCalledTimes(1);
    for (const id of ids)
      expect(await getDelivery(env.LEDGER, env.PAYLOADS, id)).toMatchObject({ status: "delivered" });
  });

  it("retries a write that failed, waiting longer each time, and after LEDGER_TRIES lets its records wait in R2 until D1 answers", async () => {
    const id = `${freshId()}.wms`;
    const first = await consume(QUEUES.ledger, [ledgerMessage(attempt(id))], { env: { LEDGER: failingLedger() } });
    expect(first.retryMessages).toEqual([{ msgId: "m0", delaySeconds: 10 }]);
    const later = await consume(QUEUES.ledger, [ledgerMessage(attempt(id))], {
      attempts: 4,
      env: { LEDGER: failingLedger() },
    });
    expect(later.retryMessages).toEqual([{ msgId: "m0", delaySeconds: 80 }]);
    const last = await consume(QUEUES.ledger, [ledgerMessage(attempt(id))], {
      attempts: LEDGER_TRIES,
      env: { LEDGER: failingLedger() },
    });
    expect(last.explicitAcks).toEqual(["m0"]);
    expect(await waiting(env.PAYLOADS)).toMatchObject({ records: 1 });
    // D1 still down: the redrive stops at once and the record stays.
    expect(await redrive(failingLedger(), env.PAYLOADS)).toMatchObject({ written: 0, waiting: 1, more: false });
    expect((await admin("/stats")).status).toBe(200);
    expect((await (await admin("/stats")).json<Stats>()).ledger).toMatchObject({ waiting: 1 });
    // D1 back, on demand: written, gone from R2.
    const redriven = await admin("/ledger/redrive", { method: "POST" });
    expect(await redriven.json()).toMatchObject({ written: 1, waiting: 0, more: false });
    expect(await getDelivery(env.LEDGER, env.PAYLOADS, id)).toMatchObject({ status: "delivered" });
  });

  it("lets a message that reached the ledger's own dead-letter queue wait in R2 at once, rather than retry it", async () => {
    const id = `${freshId()}.wms`;
    const result = await consume(QUEUES.ledgerFailed, [ledgerMessage(attempt(id))], {
      env: { LEDGER: failingLedger() },
    });
    expect(result.explicitAcks).toEqual(["m0"]);
    expect(await waiting(env.PAYLOADS)).toMatchObject({ records: 1 });
    await redrive(env.LEDGER, env.PAYLOADS);
    expect(await getDelivery(env.LEDGER, env.PAYLOADS, id)).toMatchObject({ status: "delivered" });
  });

  it("waits for a ledger that hangs only so long", async () => {
    const hanging = { ...failingLedger(), batch: () => new Promise(() => {}) } as unknown as D1Database;
    const started = Date.now();
    const result = await consume(QUEUES.ledger, [ledgerMessage(attempt(`${freshId()}.wms`))], {
      env: { LEDGER: hanging },
    });
    expect(Date.now() - started).toBeLessThan(LEDGER_TIMEOUT_MS + 3000);
    expect(result.retryMessages).toHaveLength(1);
  });
});

describe("through the queue", () => {
  it("delivers what the ingress enqueued, via the consumer wired in wrangler.toml", async () => {
    const body = JSON.stringify({
      Id: freshId(),
      Attempt: 1,
      Properties: { NotificationId: "q" },
      Notifications: [{ Action: "PickingStarted", Details: { Order: { OrderNumber: "802624", Warehouse: "ADR-1" } } }],
    });
    const id = JSON.parse(body).Id as string;
    expect((await signedPost(body)).status).toBe(202);
    await vi.waitFor(
      async () => {
        const requests = captured.filter(({ request }) => request.headers.get("x-relay-delivery-id") === `${id}.wms`);
        expect(requests).toHaveLength(1);
        expect(JSON.parse(text(requests[0]!.body)).Notifications[0].Action).toBe("PickingStarted");
      },
      { timeout: 15_000, interval: 100 },
    );
  });
});
