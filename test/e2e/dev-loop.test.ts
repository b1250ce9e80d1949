/**
 * The local loop end to end: the pieces `npm run dev` starts (relay under wrangler dev with the example
 * rules seeded into its local KV, demo receiver) on free ports with their own state folder, a sample sent
 * by send-sample, and the receiver seeing it arrive with a signature that verifies.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevLoop, startDevLoop } from "../../scripts/dev.ts";
import { parseDevVars } from "../../scripts/lib/dev-vars.ts";
import { freePort, ROOT } from "../../scripts/lib/wrangler-dev.ts";
import { findSample, sendSample } from "../../scripts/send-sample.ts";
import { tempDir } from "../temp.ts";

const secrets = parseDevVars(readFileSync(join(ROOT, ".dev.vars.example"), "utf8"));
let loop: DevLoop | undefined;
const printed: string[] = [];

beforeAll(async () => {
  loop = await startDevLoop({
    relayPort: await freePort(),
    receiverPort: 0,
    persistTo: tempDir("devloop"),
    secrets,
    print: (line) => printed.push(line),
  });
}, 150_000);

afterAll(async () => {
  await loop?.stop();
}, 30_000);

function running(): DevLoop {
  if (loop === undefined) throw new Error("the dev loop did not start");
  return loop;
}

describe("npm run dev's pieces", () => {
  it("seeds the example rules, pointed at the demo receiver, into the relay's local KV", async () => {
    const { relay, receiver } = running();
    const response = await fetch(`${relay.url}/admin/rules`, {
      headers: { authorization: `Bearer ${secrets.ADMIN_TOKEN}` },
    });
    expect(response.status).toBe(200);
    const rules = (await response.json()) as { destinations: Record<string, { url: string }> };
    expect(rules.destinations.wms!.url).toBe(`http://127.0.0.1:${receiver.port}/wms`);
    expect(rules.destinations.shop!.url).toBe(`http://127.0.0.1:${receiver.port}/shop`);
  });

  it("delivers a sample sent by send-sample to both destinations, each signature verified", async () => {
    const { relay, receiver } = running();
    const sample = findSample("OrderCreated")!;
    const sent = await sendSample({
      text: sample.text,
      url: `${relay.url}/webhook`,
      secret: secrets.EXTEND_WEBHOOK_SECRET!,
    });
    expect(sent.status).toBe(202);
    expect(sent.answer).toMatchObject({ status: "accepted", id: sent.id, notifications: 1, deliveries: 2 });
    // A fresh Id, so the sample's own Id (and thus dedupe) is not in play.
    expect(sent.id).not.toBe(JSON.parse(sample.text).Id);

    const wms = await receiver.waitFor((d) => d.deliveryId === `${sent.id}.wms`, 60_000);
    expect(wms).toMatchObject({
      destination: "wms",
      scheme: "ms-signature",
      verified: true,
      attempt: "1",
      status: 200,
    });
    expect(JSON.parse(wms.body).Notifications).toEqual(JSON.parse(sample.text).Notifications);

    const shop = await receiver.waitFor((d) => d.deliveryId === `${sent.id}.shop`, 60_000);
    expect(shop).toMatchObject({
      destination: "shop",
      scheme: "standard-webhooks",
      verified: true,
      actions: ["OrderCreated"],
    });
    expect(shop.headers["x-api-key"]).toBe(secrets.SHOP_API_KEY);
    expect(shop.headers["webhook-id"]).toBe(`${sent.id}.shop`);

    expect(
      printed.some((line) => line.includes(`${sent.id}.wms`) && line.includes("verified: yes (ms-signature)")),
    ).toBe(true);
  });

  it("runs the send-sample command itself: a signed PickingStarted reaches the warehouse system", async () => {
    const { relay, receiver } = running();
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
      (done) => {
        const child = spawn(
          join(ROOT, "node_modules", ".bin", "node"),
          [
            "scripts/send-sample.ts",
            "PickingStarted",
            "--url",
            `${relay.url}/webhook`,
            "--secret",
            secrets.EXTEND_WEBHOOK_SECRET!,
          ],
          { cwd: ROOT, env: { ...process.env, INIT_CWD: ROOT } },
        );
        let out = "";
        let err = "";
        child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
        child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
        child.on("close", (exit) => done({ code: exit, stdout: out, stderr: err }));
      },
    );
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const id = /Id ([0-9a-f]{32})\s+→ 202 /.exec(stdout)?.[1];
    expect(id, stdout).toBeDefined();
    const delivery = await receiver.waitFor((d) => d.deliveryId === `${id}.wms`, 60_000);
    expect(delivery).toMatchObject({ actions: ["PickingStarted"], verified: true });
  });

  it("refuses a sample signed with the wrong secret, and nothing of it reaches the receiver", async () => {
    const { relay, receiver } = running();
    const before = receiver.deliveries.length;
    const text = findSample("OrderCancelled")!.text;
    const refused = await sendSample({ text, url: `${relay.url}/webhook`, secret: "not-the-secret" });
    expect(refused.status).toBe(401);
    expect(refused.answer).toMatchObject({ error: "signature_invalid" });
    // Deliveries arrive later through the queue: a correctly signed call sent after the refused one marks
    // the point by which anything the refused one had wrongly enqueued would have arrived too.
    const good = await sendSample({ text, url: `${relay.url}/webhook`, secret: secrets.EXTEND_WEBHOOK_SECRET! });
    expect(good.status).toBe(202);
    await receiver.waitFor((d) => d.deliveryId === `${good.id}.wms`, 60_000);
    await receiver.waitFor((d) => d.deliveryId === `${good.id}.shop`, 60_000);
    expect(
      receiver.deliveries
        .slice(before)
        .map((d) => d.deliveryId)
        .sort(),
    ).toEqual([`${good.id}.shop`, `${good.id}.wms`]);
  });
});
