import { createHmac } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  callIdOf,
  type DemoReceiver,
  receiverDestinations,
  startDemoReceiver,
  withReceiverPort,
} from "../../scripts/demo-receiver.ts";

const SHOP_SECRET = "whsec_ZXh0ZW5kLXJlbGF5LWRldi1zaG9wLWtleS0zMmJ5dGU=";
const body = JSON.stringify({ Id: "abc", Attempt: 1, Notifications: [{ Action: "OrderCreated", Details: {} }] });
let receiver: DemoReceiver;
const printed: string[] = [];

beforeAll(async () => {
  receiver = await startDemoReceiver({
    port: 0,
    print: (line) => printed.push(line),
    destinations: [
      { name: "wms", path: "/wms", scheme: "ms-signature", secret: "wms-secret" },
      { name: "shop", path: "/shop", scheme: "standard-webhooks", secret: SHOP_SECRET },
      { name: "crm", path: "/crm", scheme: "none" },
    ],
  });
});
afterAll(() => receiver.close());

const post = (path: string, headers: Record<string, string>) =>
  fetch(`${receiver.url}${path}`, {
    method: "POST",
    body,
    headers: { "x-relay-delivery-id": `abc${path.replace("/", ".")}`, "x-relay-attempt": "1", ...headers },
  });

describe("demo receiver", () => {
  it("verifies ms-signature and answers 401 when it does not match", async () => {
    const good = `sha256=${createHmac("sha256", "wms-secret").update(body).digest("hex").toUpperCase()}`;
    expect((await post("/wms", { "ms-signature": good })).status).toBe(200);
    const tampered = good.slice(0, -1) + (good.endsWith("0") ? "1" : "0");
    expect((await post("/wms", { "ms-signature": tampered })).status).toBe(401);
    expect(receiver.deliveries.map((d) => d.verified)).toEqual([true, false]);
    expect(printed[0]).toBe("[wms ]  abc.wms  attempt 1  OrderCreated  verified: yes (ms-signature)  → 200");
    expect(printed[1]).toContain("verified: NO (ms-signature does not match)  → 401");
  });

  it("verifies Standard Webhooks with the standardwebhooks package's own signing", async () => {
    const timestamp = new Date();
    const signature = new Webhook(SHOP_SECRET).sign("abc.shop", timestamp, body);
    const headers = { "webhook-id": "abc.shop", "webhook-timestamp": String(Math.floor(timestamp.getTime() / 1000)) };
    expect((await post("/shop", { ...headers, "webhook-signature": signature })).status).toBe(200);
    const forged = new Webhook(`whsec_${Buffer.from("another-secret-another-secret!!").toString("base64")}`).sign(
      "abc.shop",
      timestamp,
      body,
    );
    expect((await post("/shop", { ...headers, "webhook-signature": forged })).status).toBe(401);
    expect(receiver.deliveries.slice(-2).map((d) => d.verified)).toEqual([true, false]);
  });

  it("takes unsigned destinations as they come, and 404s unknown paths", async () => {
    expect((await post("/crm", {})).status).toBe(200);
    expect(receiver.deliveries.at(-1)).toMatchObject({ destination: "crm", verified: null });
    expect((await post("/nowhere", {})).status).toBe(404);
  });

  it("finds its destinations and their secrets in the rules, following the port", () => {
    const rules = {
      destinations: {
        wms: { url: "http://127.0.0.1:8788/wms", signing: { scheme: "ms-signature", secret: "WMS_SECRET" } },
        remote: { url: "https://example.com/x" },
      },
    };
    const moved = withReceiverPort(rules, 9999);
    expect(moved.destinations.wms.url).toBe("http://127.0.0.1:9999/wms");
    expect(rules.destinations.wms.url).toBe("http://127.0.0.1:8788/wms");
    expect(receiverDestinations(moved, { WMS_SECRET: "v" }, 9999)).toEqual([
      { name: "wms", path: "/wms", scheme: "ms-signature", secret: "v" },
    ]);
  });
});

describe("demo receiver trace hints", () => {
  it("prints the trace command once per call Id, after the call's deliveries have gone quiet", async () => {
    const lines: string[] = [];
    const quiet = await startDemoReceiver({
      port: 0,
      print: (line) => lines.push(line),
      relayUrl: "http://127.0.0.1:18787",
      traceHintDelayMs: 200,
      destinations: [
        { name: "wms", path: "/wms", scheme: "none" },
        { name: "shop", path: "/shop", scheme: "none" },
      ],
    });
    try {
      const id = "35a05317f6fa66db6202fc35c289715d";
      const send = (destination: string, deliveryId: string, attempt: number) =>
        fetch(`${quiet.url}/${destination}`, {
          method: "POST",
          body: JSON.stringify({ Id: id, Attempt: attempt, Notifications: [{ Action: "OrderCreated", Details: {} }] }),
          headers: { "x-relay-delivery-id": deliveryId, "x-relay-attempt": String(attempt) },
        });
      await send("wms", `${id}.wms`, 1);
      await send("shop", `${id}.shop.n0`, 1);
      expect(lines).toHaveLength(2);
      await new Promise((r) => setTimeout(r, 500));
      expect(lines[2]).toBe(`        trace: npm run trace -- ${id} --url http://127.0.0.1:18787`);
      // A retry of the same call later on: no second hint.
      await send("shop", `${id}.shop.n0`, 2);
      await new Promise((r) => setTimeout(r, 500));
      expect(lines).toHaveLength(4);
      expect(lines[3]).toContain("attempt 2");
    } finally {
      await quiet.close();
    }
  });

  it("finds the call Id in the body, else in the delivery id", () => {
    const body = JSON.stringify({ Id: "a.b", Notifications: [] });
    expect(callIdOf({ deliveryId: "a.b.crm.n4", destination: "crm", body })).toBe("a.b");
    expect(callIdOf({ deliveryId: "abc.shop.p2", destination: "shop", body: "not json" })).toBe("abc");
    expect(callIdOf({ deliveryId: "abc.wms", destination: "wms", body: "{}" })).toBe("abc");
    expect(callIdOf({ deliveryId: "abc", destination: "wms", body: "{}" })).toBeUndefined();
    expect(callIdOf({ deliveryId: null, destination: "wms", body: "{}" })).toBeUndefined();
  });
});
