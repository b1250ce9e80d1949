import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { DryRun } from "../../src/admin/schemas.ts";
import app from "../../src/index.ts";
import { admin, clearRules, EXAMPLE_RULES, envelope, FIXTURES, putRules } from "../helpers.ts";

const json = (body: unknown): RequestInit => ({
  method: "POST",
  body: JSON.stringify(body),
  headers: { "content-type": "application/json" },
});
const put = (body: unknown): RequestInit => ({ ...json(body), method: "PUT" });

async function dryRun(body: unknown): Promise<DryRun> {
  const response = await admin("/route", json(body));
  expect(response.status).toBe(200);
  return response.json<DryRun>();
}

const ROUTE_NAMES = EXAMPLE_RULES.routes.map((r) => r.name);
const kvRules = async () => JSON.parse((await env.RULES.get("rules", "text")) ?? "null") as unknown;

beforeEach(() => putRules(EXAMPLE_RULES));
afterEach(() => vi.restoreAllMocks());

describe("admin rules endpoints refuse callers without the token", () => {
  const endpoints: [string, () => RequestInit][] = [
    ["/rules", () => ({ method: "GET" })],
    ["/rules", () => put(EXAMPLE_RULES)],
    ["/rules/validate", () => json(EXAMPLE_RULES)],
    ["/route", () => json(JSON.parse(FIXTURES["OrderCreated.json"]!))],
  ];

  it.each(endpoints)("%s answers 401 with no or a wrong bearer token", async (path, init) => {
    for (const authorization of [undefined, "Bearer wrong-token", "Basic dGVzdA=="]) {
      const headers: Record<string, string> = {
        "cf-connecting-ip": "198.51.100.77",
        ...(authorization === undefined ? {} : { authorization }),
      };
      const response = await app.fetch!(
        new Request(`https://relay.test/admin${path}`, { ...init(), headers }) as never,
        env,
        { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext,
      );
      expect(response.status, `${path} ${authorization}`).toBe(401);
      expect(await response.json()).toMatchObject({ error: "unauthorized" });
      expect(response.headers.get("www-authenticate")).toMatch(/^Bearer /);
    }
  });

  it("does not store rules sent with a wrong token", async () => {
    const response = await admin("/rules", {
      ...put({ version: 1, destinations: {}, routes: [] }),
      headers: { authorization: "Bearer nope" },
    });
    expect(response.status).toBe(401);
    expect(await kvRules()).toEqual(EXAMPLE_RULES);
  });

  it("answers 503 admin_disabled when ADMIN_TOKEN is not set, whatever the token", async () => {
    const disabled = { ...env, ADMIN_TOKEN: undefined, VIEWER_TOKEN: undefined };
    const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext;
    const request = new Request("https://relay.test/admin/rules", {
      headers: { authorization: "Bearer test-admin-token", "cf-connecting-ip": "198.51.100.78" },
    });
    const response = await app.fetch!(request as never, disabled, ctx);
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({
      error: "admin_disabled",
      message: expect.stringContaining("ADMIN_TOKEN"),
    });
  });
});

describe("GET /admin/rules", () => {
  it("returns the stored document", async () => {
    const response = await admin("/rules");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("application/json");
    expect(await response.json()).toEqual(EXAMPLE_RULES);
  });

  it("answers 404 rules_not_found when KV holds none", async () => {
    await clearRules();
    const response = await admin("/rules");
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: "rules_not_found" });
  });
});

describe("PUT /admin/rules", () => {
  const replacement = {
    version: 1,
    destinations: { crm: { url: "https://crm.test/in", headers: { "X-Source": "extend" } } },
    routes: [{ name: "orders-to-crm", actions: ["OrderCreated"], to: ["crm"] }],
  };

  it("stores a valid document that GET then returns unchanged", async () => {
    const response = await admin("/rules", put(replacement));
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: "stored", warnings: [] });
    expect(await (await admin("/rules")).json()).toEqual(replacement);
  });

  it("takes effect at once in this isolate: the cached rules are dropped", async () => {
    const order = JSON.parse(FIXTURES["OrderCreated.json"]!);
    // Load (and cache, for RULES_CACHE_SECONDS = 30) the example rules.
    expect((await dryRun(order)).notifications[0]!.destinations).toEqual(["wms", "shop"]);
    expect((await admin("/rules", put(replacement))).status).toBe(200);
    const after = await dryRun(order);
    expect(after.notifications[0]!.destinations).toEqual(["crm"]);
    expect(after.deliveries.map((d) => d.destination)).toEqual(["crm"]);
  });

  it("refuses an invalid document whole with 422 and path-named issues, keeping the stored one", async () => {
    const invalid = {
      version: 1,
      destinations: {
        wms: { url: "ftp://wms.test/", signing: { scheme: "ms-signature" } },
        shop: { url: "https://shop.test/", headers: { "Content-Type": "text/plain" }, timeoutMs: 50 },
      },
      routes: [
        { name: "a", actions: ["OrderCreated"], to: ["wms", "nowhere"] },
        { name: "a", actions: ["Order*Created"], to: [] },
      ],
    };
    const response = await admin("/rules", put(invalid));
    expect(response.status).toBe(422);
    const body = await response.json<{ error: string; message: string; issues: { path: string; message: string }[] }>();
    expect(body.error).toBe("rules_invalid");
    expect(body.message).toContain("was not stored");
    const paths = body.issues.map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        "destinations.wms.url",
        "destinations.wms.signing.secret",
        "destinations.shop.headers.Content-Type",
        "destinations.shop.timeoutMs",
        "routes[1].actions[0]",
        "routes[1].to",
      ]),
    );
    expect(body.issues).toContainEqual({
      path: "destinations.wms.url",
      message: "must use https (http only for localhost / 127.0.0.1)",
    });
    expect(await kvRules()).toEqual(EXAMPLE_RULES);
  });

  it("reports cross-reference problems (unknown destination, duplicate name) by path", async () => {
    const response = await admin(
      "/rules",
      put({
        ...EXAMPLE_RULES,
        routes: [...EXAMPLE_RULES.routes, { name: "orders", actions: ["OrderCreated"], to: ["erp"] }],
      }),
    );
    expect(response.status).toBe(422);
    const { issues } = await response.json<{ issues: { path: string; message: string }[] }>();
    expect(issues).toEqual([
      { path: "routes[5].name", message: 'duplicate route name "orders"' },
      { path: "routes[5].to[0]", message: 'unknown destination "erp"' },
    ]);
  });

  it("stores a document with warnings and lists them in the 200 body: unknown Actions and missing secrets", async () => {
    const warned = {
      version: 1,
      destinations: {
        erp: {
          url: "https://erp.test/",
          signing: { scheme: "standard-webhooks", secret: "ERP_SECRET" },
          headers: { "X-Key": { secret: "ERP_KEY" } },
        },
      },
      routes: [{ name: "typo", actions: ["OrderCreatd", "Purchase*"], to: ["erp"] }],
    };
    const response = await admin("/rules", put(warned));
    expect(response.status).toBe(200);
    const body = await response.json<{ status: string; warnings: { path: string; message: string }[] }>();
    expect(body.status).toBe("stored");
    expect(body.warnings.map((w) => w.path)).toEqual([
      "routes[0].actions[0]",
      "destinations.erp.signing.secret",
      "destinations.erp.headers.X-Key",
    ]);
    expect(body.warnings[0]!.message).toContain('"OrderCreatd" is not an Action');
    expect(body.warnings[1]!.message).toContain("ERP_SECRET is not set");
    expect(await kvRules()).toEqual(warned);
  });

  it("answers 400 invalid_json for a body that is not JSON", async () => {
    const response = await admin("/rules", { method: "PUT", body: "{not json" });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: "invalid_json" });
  });
});

describe("POST /admin/rules/validate", () => {
  it("answers valid with the warnings and stores nothing", async () => {
    const candidate = { ...EXAMPLE_RULES, routes: [{ name: "new", actions: ["StockTakeFinished"], to: ["wms"] }] };
    const response = await admin("/rules/validate", json(candidate));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      status: "valid",
      warnings: [
        {
          path: "routes[0].actions[0]",
          message: '"StockTakeFinished" is not an Action Extend Commerce documents; check the spelling',
        },
      ],
    });
    expect(await kvRules()).toEqual(EXAMPLE_RULES);
  });

  it("answers 422 with issues for an invalid document", async () => {
    const response = await admin("/rules/validate", json({ version: 2, destinations: {}, routes: [{ name: "x" }] }));
    expect(response.status).toBe(422);
    const { issues } = await response.json<{ issues: { path: string }[] }>();
    expect(issues.map((i) => i.path)).toEqual(expect.arrayContaining(["version", "routes[0].actions", "routes[0].to"]));
  });
});

describe("POST /admin/route (dry run)", () => {
  it.each(Object.keys(FIXTURES))(
    "explains %s: every route's verdict, destinations and deliveries, enqueuing nothing",
    async (name) => {
      const send = vi.spyOn(env.DELIVERIES, "send");
      const sendBatch = vi.spyOn(env.DELIVERIES, "sendBatch");
      const sample = JSON.parse(FIXTURES[name]!) as { Id: string; Notifications: unknown[] };
      const result = await dryRun(sample);
      expect(result.id).toBe(sample.Id);
      expect(result.notifications).toHaveLength(sample.Notifications.length);
      for (const n of result.notifications) {
        // Every route is accounted for, in document order: matched or not, with a reason.
        const verdicts = [...n.routes, ...n.notMatched.map((v) => v.route)];
        expect(verdicts.sort()).toEqual([...ROUTE_NAMES].sort());
        for (const v of n.notMatched)
          expect(["action", "warehouse", "where", "disabled", "destinations_disabled"]).toContain(v.reason);
        expect(n.notMatched.find((v) => v.route === "archive")).toMatchObject({ reason: "disabled" });
      }
      const destinations = new Set(result.notifications.flatMap((n) => n.destinations));
      expect(new Set(result.deliveries.map((d) => d.destination))).toEqual(destinations);
      for (const d of result.deliveries) expect(d.deliveryId).toBe(`${sample.Id}.${d.destination}`);
      expect(send).not.toHaveBeenCalled();
      expect(sendBatch).not.toHaveBeenCalled();
    },
  );

  it("matches OrderCreated to the orders route and says why the others did not match", async () => {
    const result = await dryRun(JSON.parse(FIXTURES["OrderCreated.json"]!));
    const [n] = result.notifications;
    expect(n).toMatchObject({
      action: "OrderCreated",
      warehouse: null,
      routes: ["orders"],
      destinations: ["wms", "shop"],
    });
    expect(n!.notMatched).toContainEqual({
      route: "stock-yx-to-shop",
      matched: false,
      reason: "action",
      detail: "OrderCreated is not one of AvailableBalanceChanged, BalanceChanged",
    });
    expect(result.deliveries.map((d) => [d.destination, d.routes, d.notifications])).toEqual([
      ["wms", ["orders"], 1],
      ["shop", ["orders"], 1],
    ]);
  });

  it("names the where condition that failed", async () => {
    const result = await dryRun(JSON.parse(FIXTURES["PurchaseDelivered.json"]!));
    const [n] = result.notifications;
    expect(n!.warehouse).toBe("B-1");
    expect(n!.routes).toEqual([]);
    expect(n!.notMatched).toContainEqual({
      route: "rp-purchases",
      matched: false,
      reason: "where",
      condition: "Details.OrderNumber",
      detail: 'Details.OrderNumber is "50002245", wanted {"prefix":"RP-"}',
    });
    expect(result.deliveries).toEqual([]);
  });

  it("says which warehouse kept a route from matching, and when there is none", async () => {
    const result = await dryRun(
      JSON.parse(
        envelope([
          { Action: "BalanceChanged", Details: { Warehouse: "ZZ", ProductNumber: "1" } },
          { Action: "PickingStarted", Details: { Order: { OrderNumber: "1" } } },
          { Action: "PickingStarted", Details: { Order: { OrderNumber: "2", Warehouse: "ADR-1" } } },
        ]),
      ),
    );
    const [balance, noWarehouse, picking] = result.notifications;
    expect(balance!.notMatched).toContainEqual(
      expect.objectContaining({
        route: "stock-yx-to-shop",
        reason: "warehouse",
        detail: "warehouse ZZ is not one of YX",
      }),
    );
    expect(noWarehouse).toMatchObject({ warehouse: null, routes: [] });
    expect(noWarehouse!.notMatched).toContainEqual(
      expect.objectContaining({ route: "picking", reason: "warehouse", detail: "the notification has no warehouse" }),
    );
    expect(picking).toMatchObject({ warehouse: "ADR-1", routes: ["picking"], destinations: ["wms"] });
    expect(result.deliveries).toMatchObject([{ destination: "wms", routes: ["picking"], notifications: 1 }]);
  });

  it("groups the mixed sample into one delivery per destination, as ingress would", async () => {
    const result = await dryRun(JSON.parse(FIXTURES["multi.json"]!));
    expect(result.notifications.map((n) => n.routes)).toEqual([
      ["stock-yx-to-shop"],
      ["orders"],
      ["picking"],
      [],
      [],
      ["stock-yx-to-shop"],
    ]);
    expect(Object.fromEntries(result.deliveries.map((d) => [d.destination, d.notifications]))).toEqual({
      shop: 3,
      wms: 2,
    });
    expect(result.batches).toBe(1);
  });

  it("tries unsaved rules given beside the envelope without storing them", async () => {
    const rules = {
      version: 1,
      destinations: { erp: { url: "https://erp.test/", mode: "single" } },
      routes: [{ name: "all", actions: ["*"], to: ["erp"] }],
    };
    const result = await dryRun({ envelope: JSON.parse(FIXTURES["multi.json"]!), rules });
    expect(result.deliveries).toHaveLength(6);
    expect(result.deliveries.every((d) => d.destination === "erp" && d.notifications === 1)).toBe(true);
    expect(await kvRules()).toEqual(EXAMPLE_RULES);
    const refused = await admin(
      "/route",
      json({ envelope: JSON.parse(FIXTURES["multi.json"]!), rules: { version: 1 } }),
    );
    expect(refused.status).toBe(422);
  });

  it("answers 400 nesting_too_deep, as the front door does, for a body nested past the limit", async () => {
    const deep = (levels: number) =>
      `{"Id":"a","Attempt":1,"Notifications":[{"Action":"OrderCreated","Details":{"OrderType":"NormalOrder","Deep":${"[".repeat(levels)}${"]".repeat(levels)}}}]}`;
    expect(
      (await admin("/route", { method: "POST", body: deep(60), headers: { "content-type": "application/json" } }))
        .status,
    ).toBe(200);
    for (const levels of [61, 100_000]) {
      const response = await admin("/route", {
        method: "POST",
        body: deep(levels),
        headers: { "content-type": "application/json" },
      });
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: "nesting_too_deep" });
    }
  });

  it("answers 400 invalid_envelope with issues for a body that is not an envelope", async () => {
    const response = await admin("/route", json({ Id: "", Notifications: [{ Details: {} }] }));
    expect(response.status).toBe(400);
    const body = await response.json<{ error: string; issues: { path: string }[] }>();
    expect(body.error).toBe("invalid_envelope");
    expect(body.issues.map((i) => i.path)).toEqual(expect.arrayContaining(["Id", "Notifications[0].Action"]));
  });
});
