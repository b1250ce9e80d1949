/**
 * `npm run trace` as a person runs it (a real process) against a real relay: the dev loop's pieces on free
 * ports with their own state, rules where the shop answers 410 (a dead letter) and the CRM 503 (retrying),
 * signed samples sent, and the trace read back by Id and by business key.
 */
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevLoop, startDevLoop } from "../../scripts/dev.ts";
import { parseDevVars } from "../../scripts/lib/dev-vars.ts";
import { type CallTrace, formatTrace } from "../../scripts/lib/trace-format.ts";
import { freePort, ROOT } from "../../scripts/lib/wrangler-dev.ts";
import { findSample, sendSample } from "../../scripts/send-sample.ts";
import { tempDir } from "../temp.ts";

const secrets = parseDevVars(readFileSync(join(ROOT, ".dev.vars.example"), "utf8"));
const TOKEN = secrets.ADMIN_TOKEN!;
/** OrderCreated.json's Details.OrderNumber. */
const ORDER_NUMBER = "3339887";
let loop: DevLoop | undefined;
let orderIds: string[] = [];
let customerId = "";

function running(): DevLoop {
  if (loop === undefined) throw new Error("the dev loop did not start");
  return loop;
}

function trace(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { ADMIN_TOKEN: _, VIEWER_TOKEN: __, ...env } = process.env;
  return new Promise((done) => {
    const child = spawn(join(ROOT, "node_modules", ".bin", "node"), ["scripts/trace.ts", ...args], {
      cwd: ROOT,
      env: { ...env, INIT_CWD: ROOT },
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
    child.on("close", (code) => done({ code, stdout: out, stderr: err }));
  });
}

/**
 * Waits until the ledger has the call and each of its deliveries is past `pending`. wrangler dev reloads
 * when src/ changes, so a refused connection is retried too.
 */
async function settled(id: string): Promise<CallTrace> {
  const deadline = Date.now() + 30_000;
  let last = "";
  for (;;) {
    try {
      const response = await fetch(`${running().relay.url}/admin/calls/${id}`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      last = `${response.status} ${await response.text()}`;
      if (response.status === 200) {
        const call = JSON.parse(last.slice(4)) as CallTrace;
        if (call.deliveries.length > 0 && call.deliveries.every((d) => d.status !== "pending")) return call;
      }
    } catch (error) {
      last = String((error as Error).cause ?? error);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `call ${id} did not settle in the ledger (last: ${last})\n${running().relay.output().slice(-3000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  const rules = JSON.parse(readFileSync(join(ROOT, "rules.example.json"), "utf8"));
  rules.destinations.shop.url += "?status=410";
  rules.destinations.crm.url += "?status=503";
  const rulesFile = join(tempDir("trace-rules"), "rules.json");
  writeFileSync(rulesFile, JSON.stringify(rules));
  loop = await startDevLoop({
    relayPort: await freePort(),
    receiverPort: 0,
    persistTo: tempDir("trace"),
    rulesFile,
    secrets,
    print: () => {},
  });
  const send = async (name: string) => {
    const sent = await sendSample({
      text: findSample(name)!.text,
      url: `${loop!.relay.url}/webhook`,
      secret: secrets.EXTEND_WEBHOOK_SECRET!,
    });
    expect(sent.status).toBe(202);
    return sent.id!;
  };
  orderIds = [await send("OrderCreated")];
  // Calls are listed by the time the relay received them: let the second one be clearly newer.
  await new Promise((r) => setTimeout(r, 20));
  orderIds.push(await send("OrderCreated"));
  customerId = await send("CustomerCreated");
  await Promise.all([...orderIds, customerId].map(settled));
}, 120_000);

afterAll(async () => {
  await loop?.stop();
}, 30_000);

describe("npm run trace against a relay", () => {
  it("shows a call by Id: each destination's status, full delivery id, attempts and the dead letter", async () => {
    const id = orderIds[0]!;
    const { code, stdout, stderr } = await trace(id, "--url", running().relay.url, "--token", TOKEN);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(
      new RegExp(
        `^Call ${id}  received \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ  sender attempt 1  2 deliveries: 1 delivered, 1 dead$`,
      ),
    );
    expect(lines[1]).toBe(`  #0  OrderCreated  order ${ORDER_NUMBER}  route orders → wms, shop`);
    // wms answers 200; the shop 410, which is not retried: a dead letter after one attempt.
    expect(lines[2]).toBe(`  wms   delivered  ${id}.wms`);
    expect(lines[3]).toMatch(/^ {8}attempt 1 {2}\d\d:\d\d:\d\dZ {2}200 {2} *\d+ ms$/);
    expect(lines[4]).toBe(`  shop  dead       ${id}.shop`);
    expect(lines[5]).toMatch(/^ {8}attempt 1 {2}\d\d:\d\d:\d\dZ {2}410 {2} *\d+ ms {2}→ dead letter$/);
    expect(lines[6]).toBe(
      "        dead letter: permanent_failure — The receiver answered HTTP 410, which is not retried.",
    );
    expect(lines[7]).toBe(
      `        replay: curl -s -X POST -H "Authorization: Bearer $ADMIN_TOKEN" ${running().relay.url}/admin/deliveries/${id}.shop/replay`,
    );
    expect(lines).toHaveLength(8);
    expect(stdout).not.toContain(TOKEN);
  });

  it("shows a delivery the receiver answered 503 as retrying", async () => {
    const { code, stdout } = await trace(customerId, "--url", running().relay.url, "--token", TOKEN);
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split("\n");
    expect(lines[1]).toBe("  #0  CustomerCreated  customer 817472  route customers-to-crm → crm");
    expect(lines[2]).toBe(`  crm  retrying  ${customerId}.crm.n0`);
    expect(lines[3]).toMatch(/^ {7}attempt 1 {2}\d\d:\d\d:\d\dZ {2}503 {2} *\d+ ms {2}→ retry$/);
  });

  it("searches by business key: every call with the order number, newest first", async () => {
    const { code, stdout, stderr } = await trace(ORDER_NUMBER, "--url", running().relay.url, "--token", TOKEN);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const lines = stdout.split("\n");
    expect(lines[0]).toBe(`2 calls with business key ${ORDER_NUMBER}, newest first`);
    const calls = lines.filter((line) => line.startsWith("Call "));
    expect(calls.map((line) => line.split(" ")[1])).toEqual([orderIds[1], orderIds[0]]);
    expect(lines.filter((line) => line.startsWith("  wms   delivered  "))).toHaveLength(2);

    const capped = await trace(ORDER_NUMBER, "--url", running().relay.url, "--token", TOKEN, "--limit", "1");
    expect(capped.code).toBe(0);
    expect(capped.stdout.split("\n").filter((line) => line.startsWith("Call "))).toHaveLength(1);
    expect(capped.stdout.trimEnd().split("\n").at(-1)).toBe(
      `… and 1 older call (npm run trace -- ${ORDER_NUMBER} --limit 6 --url ${running().relay.url})`,
    );
  });

  it("--json prints the admin API's answer", async () => {
    const id = orderIds[0]!;
    const { code, stdout } = await trace(id, "--json", "--url", running().relay.url, "--token", TOKEN);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual(await settled(id));
    const byKey = await trace(ORDER_NUMBER, "--json", "--url", running().relay.url, "--token", TOKEN);
    expect((JSON.parse(byKey.stdout) as CallTrace[]).map((c) => c.id)).toEqual([orderIds[1], orderIds[0]]);
  });

  it("exits 1 when neither an Id nor a business key is found", async () => {
    const { code, stdout, stderr } = await trace(
      "0123456789abcdef0123456789abcdef",
      "--url",
      running().relay.url,
      "--token",
      TOKEN,
    );
    expect(code).toBe(1);
    expect(stdout).toBe("");
    expect(stderr).toMatch(/^Nothing found: the ledger at .* has no call with Id "0123456789abcdef0123456789abcdef"/);
    expect(stderr.trimEnd().split("\n")).toHaveLength(1);
  });

  it("exits 2 with one line when the token is wrong, never printing it", async () => {
    const wrong = "not-the-admin-token-d41d8cd98f00b204";
    const { code, stdout, stderr } = await trace(orderIds[0]!, "--url", running().relay.url, "--token", wrong);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toBe(
      `error: the relay at ${running().relay.url} refused the admin token from --token (401: unauthorized: The token is wrong.). Pass its ADMIN_TOKEN with --token or set ADMIN_TOKEN.\n`,
    );
    expect(stderr).not.toContain(wrong);
  });

  it("exits 2 with one line when the relay cannot be reached", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const { code, stdout, stderr } = await trace(orderIds[0]!, "--url", url, "--token", TOKEN);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toBe(
      `error: cannot reach the relay at ${url} (ECONNREFUSED). Is it running? Start it with: npm run dev\n`,
    );
  });

  it("exits 2 on a usage mistake", async () => {
    const none = await trace("--url", running().relay.url);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("error: name one call Id or business key");
    const url = await trace("x", "--url", "ftp://example.com");
    expect(url.code).toBe(2);
    expect(url.stderr).toBe(
      "error: --url ftp://example.com is not an http:// or https:// URL of a relay, e.g. http://127.0.0.1:8787\n",
    );
  });
});

describe("formatTrace", () => {
  const base: CallTrace = {
    id: "c1",
    receivedAt: "2026-12-01T20:06:31.474Z",
    senderAttempts: [1, 2],
    notifications: [
      {
        index: 0,
        action: "PickingStarted",
        warehouse: "ADR-1",
        key: "802624",
        routes: ["picking"],
        destinations: ["wms"],
      },
      { index: 1, action: "PurchaseCreated", warehouse: null, key: null, routes: [], destinations: [] },
    ],
    deliveries: [],
  };

  it("shows network errors, replays, a pending delivery and unrouted notifications", () => {
    const lines = formatTrace({
      ...base,
      deliveries: [
        {
          deliveryId: "c1.wms",
          destination: "wms",
          status: "delivered",
          attempts: [
            {
              attempt: 1,
              at: "2026-12-01T20:06:32.000Z",
              error: "no answer within 5000 ms",
              durationMs: 5003,
              outcome: "retry",
            },
            {
              attempt: 2,
              at: "2026-12-01T20:06:34.000Z",
              status: 410,
              error: "permanent_failure",
              durationMs: 4,
              outcome: "dead_letter",
            },
            {
              attempt: 1,
              at: "2026-12-02T08:00:00.000Z",
              status: 200,
              durationMs: 12,
              outcome: "delivered",
              replay: true,
            },
          ],
        },
        { deliveryId: "c1.erp", destination: "erp", status: "pending", attempts: [] },
      ],
    });
    expect(lines).toEqual([
      "Call c1  received 2026-12-01 20:06:31Z  sender attempts 1, 2  2 deliveries: 1 delivered, 1 pending",
      "  #0  PickingStarted   order 802624  warehouse ADR-1  route picking → wms",
      "  #1  PurchaseCreated                                 no route matched",
      "  wms  delivered  c1.wms",
      "       attempt 1         20:06:32Z             —    5003 ms  → retry: no answer within 5000 ms",
      "       attempt 2         20:06:34Z             410     4 ms  → dead letter: permanent_failure",
      "       replay attempt 1  2026-12-02 08:00:00Z  200    12 ms",
      "  erp  pending    c1.erp",
      "       no attempt recorded yet",
    ]);
  });

  it("says when nothing was routed", () => {
    expect(formatTrace({ ...base, senderAttempts: [1] })[0]).toBe(
      "Call c1  received 2026-12-01 20:06:31Z  sender attempt 1  no deliveries",
    );
  });
});
