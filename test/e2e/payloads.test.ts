/**
 * Payloads of any size, end to end (docs/delivery.md, "Large notifications"): `wrangler dev` with a real receiver.
 * A 300 KB and a 5 MB notification reach it byte-exact with a valid ms-signature, are traced and resent; a claim
 * whose R2 object was deleted becomes a dead letter saying so; a call over MAX_BODY_BYTES is refused 413.
 */
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WRANGLER, wranglerEnv } from "../../scripts/lib/wrangler-dev.ts";
import { bodyAround, parseCall } from "../../src/extend/envelope.ts";
import type { CallTrace } from "../../src/ledger/views.ts";
import { ok, type Receiver, startReceiver } from "./lib/receivers.ts";
import { freshId, type Relay, SECRETS, startRelay, waitFor } from "./lib/relay.ts";

const state = mkdtempSync(join(tmpdir(), "extend-relay-payloads-e2e-"));
let relay: Relay;
let wms: Receiver;
let paused: Receiver;

/** A call as Extend indents it, with one small order and one whose Details hold `bytes` of padding. */
function call(id: string, bytes: number): string {
  return JSON.stringify(
    {
      Id: id,
      Attempt: 1,
      Properties: { NotificationId: crypto.randomUUID() },
      Notifications: [
        { Action: "OrderCreated", Details: { OrderNumber: `${id}-a`, OrderType: "NormalOrder", Total: 100.5 } },
        {
          Action: "OrderCreated",
          Details: { OrderNumber: `${id}-b`, OrderType: "NormalOrder", Note: `Åsa ${"ö".repeat(bytes / 2)}` },
        },
      ],
    },
    null,
    2,
  ).replaceAll("\n", "\r\n");
}

/**
 * What the receiver gets: the sender's own text of each member and notification, the relay's Attempt in place of
 * the sender's (only the whitespace between the envelope's members is the relay's).
 */
const expected = (text: string, attempt: number) => {
  const { head, tail } = bodyAround(parseCall(new TextEncoder().encode(text)), [0, 1]);
  return `${head}${attempt}${tail}`;
};

const signature = (body: Buffer) =>
  `sha256=${createHmac("sha256", SECRETS.WMS_SECRET).update(body).digest("hex").toUpperCase()}`;

async function trace(id: string): Promise<CallTrace | undefined> {
  const response = await relay.admin(`/calls/${id}`);
  return response.status === 200 ? ((await response.json()) as CallTrace) : undefined;
}

beforeAll(async () => {
  wms = await startReceiver("wms", ok);
  paused = await startReceiver("paused", ok);
  relay = await startRelay({ vars: { RETRY_SCHEDULE: "1,1,1" }, persistTo: state });
  const put = await relay.admin("/rules", {
    method: "PUT",
    body: JSON.stringify({
      version: 1,
      destinations: {
        wms: { url: wms.url, signing: { scheme: "ms-signature", secret: "WMS_SECRET" } },
        paused: { url: paused.url, maxAttempts: 2 },
      },
      routes: [
        { name: "orders", actions: ["OrderCreated"], where: { "Details.OrderType": "NormalOrder" }, to: ["wms"] },
        { name: "held", actions: ["OrderChanged"], to: ["paused"] },
      ],
    }),
  });
  expect(put.status).toBe(200);
}, 120_000);

afterAll(async () => {
  await relay?.stop();
  await Promise.all([wms?.stop(), paused?.stop()]);
  rmSync(state, { recursive: true, force: true });
});

describe.each([
  ["300 KB", 300_000],
  ["5 MB", 5_000_000],
])("a %s notification", (_label, bytes) => {
  const id = freshId();
  const text = call(id, bytes);

  it("is delivered byte-exact with a valid ms-signature", async () => {
    const response = await relay.send(text);
    expect(response.status).toBe(202);
    expect(await response.json()).toMatchObject({ status: "accepted", deliveries: 1 });
    const got = await waitFor(`wms to get ${id}`, () => wms.requests.find((r) => r.deliveryId === `${id}.wms`));
    expect(got.body.toString("utf8")).toBe(expected(text, 1));
    expect(got.headers["ms-signature"]).toBe(signature(got.body));
  });

  it("is traced, and resent byte-exact under the same delivery id", async () => {
    const traced = await waitFor(`the ledger to hold ${id} delivered`, async () => {
      const found = await trace(id);
      return found?.deliveries[0]?.status === "delivered" ? found : undefined;
    });
    expect(traced.notifications.map((n) => n.key)).toEqual([`${id}-a`, `${id}-b`]);
    const resent = await relay.admin(`/deliveries/${id}.wms/replay`, { method: "POST" });
    expect(resent.status).toBe(202);
    const again = await waitFor(`wms to get ${id} again`, () => {
      const all = wms.requests.filter((r) => r.deliveryId === `${id}.wms`);
      return all.length === 2 ? all[1] : undefined;
    });
    expect(again.body.toString("utf8")).toBe(expected(text, 1));
    expect(again.headers["ms-signature"]).toBe(signature(again.body));
  });
});

describe("a claim whose object is gone", () => {
  it("becomes a dead letter naming the missing object, after its attempts, and nothing reaches the receiver", async () => {
    await relay.admin("/destinations/paused/pause", { method: "POST" });
    const id = freshId();
    const text = JSON.stringify({
      Id: id,
      Attempt: 1,
      Notifications: [{ Action: "OrderChanged", Details: { OrderNumber: `${id}-c`, Note: "x".repeat(200_000) } }],
    });
    expect((await relay.send(text)).status).toBe(202);
    await waitFor("the delivery to be held", async () => {
      const list = (await (await relay.admin("/destinations")).json()) as {
        destinations: { name: string; held: number }[];
      };
      return list.destinations.find((d) => d.name === "paused")!.held === 1 ? true : undefined;
    });
    // The object goes away while the delivery waits (wrangler's own R2 commands, on the relay's local state).
    const key = `claims/${id}/n0`;
    execFileSync(
      WRANGLER,
      ["r2", "object", "delete", `extend-relay-payloads/${key}`, "--local", "--persist-to", state],
      {
        cwd: join(import.meta.dirname, "..", ".."),
        env: wranglerEnv(),
        stdio: "pipe",
      },
    );
    await relay.admin("/destinations/paused/resume", { method: "POST" });
    const dead = await waitFor(
      "the dead letter",
      async () => {
        const response = await relay.admin(`/dead-letters/${id}.paused`);
        return response.status === 200
          ? ((await response.json()) as { reason: string; detail: string; attempts: number })
          : undefined;
      },
      { timeoutMs: 90_000 },
    );
    expect(dead).toMatchObject({ reason: "claim_unreadable", attempts: 2 });
    expect(dead.detail).toContain(`the object ${key} is missing from PAYLOADS`);
    expect(paused.requests).toHaveLength(0);
  });
});

describe("a call over MAX_BODY_BYTES (10 MiB)", () => {
  it("is refused 413 body_too_large and leaves nothing behind", async () => {
    const id = freshId();
    const text = call(id, 11 * 1_048_576);
    const response = await relay.send(text);
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: "body_too_large" });
    expect((await relay.admin(`/calls/${id}`)).status).toBe(404);
  });
});
