/**
 * No row, no change (docs/console.md, "The activity log"): every change through the admin API or the console
 * is written to the activity log before it is made, and one whose row cannot be written is not made.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { alertText } from "../../src/alerts/text.ts";
import { freshState, pauseByHand } from "../../src/gate/policy.ts";
import { listActivity } from "../../src/ledger/activity.ts";
import { ADMIN_TOKEN, admin, EXAMPLE_RULES, expectError, failingLedger, fetchWith, putRules } from "../helpers.ts";

const request = (path: string, init: RequestInit = {}) =>
  new Request(`https://relay.test/admin${path}`, {
    ...init,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "cf-connecting-ip": "192.0.2.55" },
  });

beforeEach(() => putRules(EXAMPLE_RULES));

describe("a change whose activity row cannot be written", () => {
  it("is not made: a pause answers 503 activity_unavailable and the destination stays active", async () => {
    const answer = await fetchWith(
      { LEDGER: failingLedger() },
      request("/destinations/shop/pause", { method: "POST" }),
    );
    await expectError(answer, 503, "activity_unavailable");
    expect(await (await admin("/destinations/shop")).json()).toMatchObject({ state: "active" });
  });

  it("is not made: a rules save answers 503 activity_unavailable and KV keeps the document in force", async () => {
    const document = { version: 1, destinations: {}, routes: [] };
    const answer = await fetchWith(
      { LEDGER: failingLedger() },
      request("/rules", { method: "PUT", body: JSON.stringify(document) }),
    );
    await expectError(answer, 503, "activity_unavailable");
    expect(JSON.parse((await env.RULES.get("rules"))!)).toEqual(EXAMPLE_RULES);
  });

  it("is recorded, when it can be, before the answer: who, the role, via, target, ip and the outcome", async () => {
    expect((await admin("/destinations/wms/pause", { method: "POST" })).status).toBe(200);
    expect((await admin("/destinations/wms/resume", { method: "POST" })).status).toBe(200);
    const { items } = await listActivity(env.LEDGER, { target: "wms", limit: 2 });
    expect(items.map((r) => [r.action, r.actor, r.role, r.via, r.ip, r.outcome])).toEqual([
      ["destination.resume", "admin-token", "operator", "api", "192.0.2.10", "ok"],
      ["destination.pause", "admin-token", "operator", "api", "192.0.2.10", "ok"],
    ]);
    const page = await (await admin("/activity?action=destination.pause&limit=1")).json<{ items: { id: number }[] }>();
    expect(page.items[0]!.id).toBe(items[1]!.id);
  });
});

describe("a pause by hand", () => {
  it("raises an alert that names who paused and the activity row", () => {
    const [event] = pauseByHand(freshState(), Date.parse("2026-12-01T10:00:00Z"), {
      actor: "ann@example.com",
      activity: 7,
    });
    expect(event).toMatchObject({ type: "destination_paused", reason: "hand", actor: "ann@example.com", activity: 7 });
    const text = alertText({ id: "x", destination: "shop", ...event! }, undefined);
    expect(text.subject).toBe("extend-relay: shop was paused by hand by ann@example.com");
    expect(text.text).toContain("paused by hand by ann@example.com at 2026-12-01 10:00:00 UTC (activity #7)");
  });
});
