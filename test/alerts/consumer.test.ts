import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ALERT_TRIES } from "../../src/alerts/consumer.ts";
import { alertText } from "../../src/alerts/text.ts";
import { listAlertsSent } from "../../src/ledger/alerts.ts";
import type { Alert, AlertMessage } from "../../src/queues/alert.ts";
import { QUEUES } from "../../src/queues/names.ts";
import { consume, EXAMPLE_RULES, putRules, sentBodies } from "../helpers.ts";

/** The alerts queue's consumer: every channel, a failed channel alone again later, nothing secret in a log. */

const HOOK_SECRET_URL = "https://hooks.test/T000/B000/very-secret-token";
const RULES = {
  ...EXAMPLE_RULES,
  destinations: {
    ...EXAMPLE_RULES.destinations,
    wms: {
      ...EXAMPLE_RULES.destinations.wms,
      techContact: "wms-team@example.com",
      alertWebhook: "https://chat.test/wms-channel",
    },
    shop: { ...EXAMPLE_RULES.destinations.shop, alertWebhook: { secret: "SHOP_ALERT_HOOK" } },
  },
};

const T = Date.parse("2026-12-01T09:00:00Z");
const paused: Alert = {
  id: `wms:destination_paused:${T}`,
  type: "destination_paused",
  destination: "wms",
  count: 20,
  firstAt: T,
  lastAt: T + 240_000,
  lastStatus: 503,
  reason: "circuit",
  probeAt: T + 540_000,
  held: 12,
};
const message = (alert: Alert, more: Partial<AlertMessage> = {}): AlertMessage => ({
  kind: "alert",
  alert,
  tries: 0,
  ...more,
});

let posted: { url: string; body: Record<string, unknown> }[];
let answer: (url: string) => Response;
let email: { send: ReturnType<typeof vi.fn> };
let requeue: ReturnType<typeof vi.spyOn>;

beforeEach(async () => {
  await putRules(RULES);
  posted = [];
  answer = () => new Response("ok");
  email = { send: vi.fn(async () => ({ messageId: "m" })) };
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    posted.push({ url: request.url, body: await request.json() });
    return answer(request.url);
  });
  requeue = vi.spyOn(env.ALERTS, "send").mockImplementation(async () => undefined as never);
});
afterEach(() => vi.restoreAllMocks());

const channels = {
  ALERTS_EMAIL: undefined as unknown,
  ALERT_EMAIL_FROM: "relay@example.com",
  ALERT_WEBHOOK: "https://ops.test/alerts",
  PUBLIC_URL: "https://relay.example.com",
  SHOP_ALERT_HOOK: HOOK_SECRET_URL,
};
const run = (bodies: unknown[], overrides: Record<string, unknown> = {}) =>
  consume(QUEUES.alerts, bodies, { env: { ...channels, ALERTS_EMAIL: email, ...overrides } });

describe("an alert", () => {
  it("goes to the tech contact by email, to the destination's webhook and to ALERT_WEBHOOK, with a console link", async () => {
    const result = await run([message(paused)]);
    expect(result.explicitAcks).toEqual(["m0"]);
    const text = alertText(paused, "https://relay.example.com/console/destinations/wms");
    expect(email.send).toHaveBeenCalledExactlyOnceWith({
      from: "relay@example.com",
      to: "wms-team@example.com",
      subject: text.subject,
      text: text.text,
    });
    expect(posted.map((p) => p.url).sort()).toEqual(["https://chat.test/wms-channel", "https://ops.test/alerts"]);
    expect(posted[0]!.body).toEqual({
      text: text.text,
      type: "destination_paused",
      destination: "wms",
      count: 20,
      lastStatus: 503,
      firstAt: "2026-12-01T09:00:00.000Z",
      lastAt: "2026-12-01T09:04:00.000Z",
      consoleUrl: "https://relay.example.com/console/destinations/wms",
      reason: "circuit",
      probeAt: "2026-12-01T09:09:00.000Z",
      held: 12,
      id: paused.id,
    });
    expect(text.text).toContain("wms is paused: 20 attempts in a row failed since 2026-12-01 09:00:00 UTC");
    expect(text.text).toContain("HTTP 503");
    expect(text.text).toContain("12 held so far");
    expect(text.text).toContain("2026-12-01 09:09:00 UTC");
    expect(text.text).toContain("POST /admin/destinations/wms/resume");
    expect(requeue).not.toHaveBeenCalled();
  });

  it("has no link without PUBLIC_URL, and no email without ALERT_EMAIL_FROM or a techContact", async () => {
    await run([message({ ...paused, destination: "shop", id: "x" })], { PUBLIC_URL: "" });
    expect(email.send).not.toHaveBeenCalled();
    expect(posted.every((p) => !("consoleUrl" in p.body))).toBe(true);
    await run([message(paused)], { ALERT_EMAIL_FROM: "" });
    expect(email.send).not.toHaveBeenCalled();
  });

  it("posts to an alertWebhook kept in a secret, and never logs the secret URL", async () => {
    const logs = [vi.spyOn(console, "log"), vi.spyOn(console, "warn"), vi.spyOn(console, "error")];
    answer = (url) => (url === HOOK_SECRET_URL ? new Response("no", { status: 500 }) : new Response("ok"));
    await run([message({ ...paused, destination: "shop", id: "s" })]);
    expect(posted.map((p) => p.url)).toContain(HOOK_SECRET_URL);
    const lines = logs.flatMap((spy) => spy.mock.calls.map(([line]) => String(line)));
    expect(lines.some((line) => line.includes("alert_send_failed") && line.includes("SHOP_ALERT_HOOK"))).toBe(true);
    expect(lines.some((line) => line.includes("very-secret-token"))).toBe(false);
  });
});

describe("a channel that fails", () => {
  it("is tried again on its own later, the others are not sent twice", async () => {
    answer = (url) => (url === "https://ops.test/alerts" ? new Response("busy", { status: 503 }) : new Response("ok"));
    const result = await run([message(paused)]);
    expect(result.explicitAcks).toEqual(["m0"]);
    expect(sentBodies(requeue)).toEqual([message(paused, { channels: ["webhook"], tries: 1 })]);
    expect(requeue.mock.calls[0]![1]).toEqual({ contentType: "text", delaySeconds: 30 });

    posted = [];
    email.send.mockClear();
    await run([message(paused, { channels: ["webhook"], tries: 3 })]);
    expect(posted.map((p) => p.url)).toEqual(["https://ops.test/alerts"]);
    expect(email.send).not.toHaveBeenCalled();
    expect(requeue.mock.calls[1]![1]).toEqual({ contentType: "text", delaySeconds: 240 });
  });

  it("is given up after ALERT_TRIES tries, logged at error", async () => {
    const error = vi.spyOn(console, "error");
    answer = () => new Response("down", { status: 502 });
    const result = await run([message(paused, { channels: ["webhook"], tries: ALERT_TRIES - 1 })]);
    expect(result.explicitAcks).toEqual(["m0"]);
    expect(requeue).not.toHaveBeenCalled();
    expect(error.mock.calls.map(([line]) => JSON.parse(String(line)).event)).toContain("alert_given_up");
  });

  it("is not retried when its URL can never work (not https), and the log names it without its value", async () => {
    const error = vi.spyOn(console, "error");
    await run([message(paused, { channels: ["webhook"] })], { ALERT_WEBHOOK: "http://ops.example.com/hook?token=abc" });
    expect(posted).toEqual([]);
    expect(requeue).not.toHaveBeenCalled();
    const lines = error.mock.calls.map(([line]) => String(line));
    expect(lines.some((line) => line.includes("ALERT_WEBHOOK must use https"))).toBe(true);
    expect(lines.some((line) => line.includes("token=abc"))).toBe(false);
  });

  it("retries an email that Email Service refused", async () => {
    email.send.mockRejectedValueOnce(new Error("sender not verified"));
    await run([message(paused)]);
    expect(sentBodies(requeue)).toEqual([message(paused, { channels: ["email"], tries: 1 })]);
  });
});

it("acks an unreadable alert message and logs it", async () => {
  const error = vi.spyOn(console, "error");
  const result = await run(["not an alert"]);
  expect(result.explicitAcks).toEqual(["m0"]);
  expect(error.mock.calls.map(([line]) => JSON.parse(String(line)).event)).toEqual(["alert_unreadable"]);
});

describe("an alert webhook the rules name", () => {
  it("is not posted to a host its secret is not bound to (SECRET_HOSTS), and the failure names the secret only", async () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    await putRules({
      version: 1,
      destinations: { shop: { ...EXAMPLE_RULES.destinations.shop, alertWebhook: { secret: "SHOP_API_KEY" } } },
      routes: [],
    });
    const alert = { ...paused, destination: "shop", id: `shop:destination_paused:${T}` };
    await run([message(alert, { channels: ["destinationWebhook"] })], {
      SHOP_API_KEY: "https://attacker.example/hook",
    });
    expect(posted).toEqual([]);
    const logged = error.mock.calls.map(([line]) => String(line)).join("\n");
    expect(logged).toContain(
      "secret SHOP_API_KEY may be sent only to shop.test (SECRET_HOSTS), not to attacker.example",
    );
    expect(logged).not.toContain("attacker.example/hook");
  });
});

describe("the alerts log", () => {
  it("keeps what went to whom (an address or a setting's name, never a URL), sent or refused", async () => {
    answer = (url) => new Response(null, { status: url.includes("ops.test") ? 500 : 200 });
    const wmsAlert: Alert = { ...paused, id: `wms:destination_paused:${T + 1}` };
    const shopAlert: Alert = { ...paused, id: `shop:destination_paused:${T + 1}`, destination: "shop" };
    await run([message(wmsAlert), message(shopAlert)]);
    const wms = (await listAlertsSent(env.LEDGER, { destination: "wms", limit: 50 })).filter(
      (a) => a.alert === wmsAlert.id,
    );
    expect(wms.map((a) => [a.channel, a.recipient, a.outcome]).sort()).toEqual([
      ["destinationWebhook", "alertWebhook (chat.test)", "sent"],
      ["email", "wms-team@example.com", "sent"],
      ["webhook", "ALERT_WEBHOOK", "failed"],
    ]);
    expect(wms.every((a) => a.type === "destination_paused" && a.text.includes("wms is paused"))).toBe(true);
    expect(wms.find((a) => a.outcome === "failed")!.error).toContain("HTTP 500");
    const shop = (await listAlertsSent(env.LEDGER, { destination: "shop", limit: 50 })).filter(
      (a) => a.alert === shopAlert.id,
    );
    expect(shop.map((a) => a.recipient)).toContain("SHOP_ALERT_HOOK");
    expect(JSON.stringify(shop)).not.toContain(HOOK_SECRET_URL);
  });
});
