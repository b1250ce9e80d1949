/**
 * The admin API's OpenAPI document (src/admin/api.ts, src/admin/openapi.ts): every route of the app is in it,
 * the document served is the one docs/admin-api.md is generated from, the table's roles are src/auth/routes.ts's,
 * and what the routes answer matches the schemas the document names (the e2e suite checks every answer it gets
 * too, test/e2e/lib/relay.ts).
 */
import { Hono } from "hono";
import type { RouterRoute } from "hono/types";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { API, API_KEYS, answerProblem, answerSchema, errorsOf, routeOf } from "../../src/admin/api.ts";
import { adminDocument } from "../../src/admin/index.ts";
import { apiDocument, described, missingRoutes, tableApp } from "../../src/admin/openapi.ts";
import { createApp } from "../../src/app.ts";
import { ROUTES } from "../../src/auth/routes.ts";
import {
  admin,
  clearLedger,
  EXAMPLE_RULES,
  eventually,
  FIXTURES,
  freshId,
  putRules,
  signedPost,
  VIEWER_TOKEN,
} from "../helpers.ts";

const adminRoutes = (app: { routes: RouterRoute[] }) => app.routes.filter((r) => r.path.startsWith("/admin/"));

describe("the OpenAPI document", () => {
  it("lists a route of the app that has no description: the check fails for a route left out", async () => {
    const app = createApp();
    // A route added without `described(…)`, as someone might.
    app.get("/admin/left-out/:id", (c) => c.json({}));
    expect(missingRoutes(adminRoutes(app), await apiDocument(app, "test"))).toEqual(["GET /admin/left-out/{id}"]);
    // And one the document lost.
    const document = await adminDocument();
    const partial = { paths: { ...document.paths, "/admin/calls/{id}": {} } };
    expect(missingRoutes(adminRoutes(createApp()), partial)).toEqual(["GET /admin/calls/{id}"]);
    // The function itself, on a small app.
    const small = new Hono().route(
      "/admin",
      new Hono().get("/calls", described("GET /admin/calls"), (c) => c.json({})).get("/calls/:id", (c) => c.json({})),
    );
    expect(missingRoutes(small.routes, await apiDocument(small, "test"))).toEqual(["GET /admin/calls/{id}"]);
  });

  it("has every route of the app under /admin, and nothing else", async () => {
    const app = createApp();
    const document = await adminDocument();
    expect(missingRoutes(adminRoutes(app), document)).toEqual([]);
    const documented = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(documented.sort()).toEqual(API_KEYS.map((key) => key.replace(/:(\w+)/g, "{$1}")).sort());
    expect(documented.length).toBeGreaterThan(25);
  });

  it("is served at GET /admin/openapi.json to a viewer, and is the one the docs are generated from", async () => {
    const response = await admin("/openapi.json", { headers: { authorization: `Bearer ${VIEWER_TOKEN}` } });
    expect(response.status).toBe(200);
    const served = await response.json<Awaited<ReturnType<typeof adminDocument>>>();
    expect(served.openapi).toBe("3.1.0");
    // The table alone (src/admin/openapi.ts tableApp, what `npm run docs` reads) makes the same document.
    const fromTable = await apiDocument(tableApp(), served.info.version);
    expect(served).toEqual(JSON.parse(JSON.stringify(fromTable)));
    expect(Object.keys(served.components.schemas ?? {})).toEqual(
      expect.arrayContaining(["CallTrace", "Delivery", "DeadLetterPage", "Destination", "Error", "DryRun"]),
    );
    // Unauthenticated: the same 401 as every admin route.
    expect((await admin("/openapi.json", { headers: { authorization: "" } })).status).toBe(401);
  });

  it("says what each route needs as src/auth/routes.ts does, and each error by the status it has", () => {
    for (const key of API_KEYS) {
      expect(ROUTES[key].role, key).toBe(API[key].role);
      const statuses = [...errorsOf(key).keys()];
      expect(statuses, key).toEqual([...statuses].sort((a, b) => a - b));
      expect(statuses, key).toContain(401);
    }
    const admins = Object.keys(ROUTES).filter((key) => key.includes(" /admin/"));
    expect(admins.sort()).toEqual([...API_KEYS].sort());
  });

  it("tells an answer it does not describe, as the e2e suite's admin() throws for one (test/e2e/lib/relay.ts)", () => {
    const ok = { items: [], cursor: "abc" };
    expect(answerProblem("GET", "/admin/calls", 200, ok)).toBeUndefined();
    // A field the schema lacks, a field missing, a wrong type.
    expect(answerProblem("GET", "/admin/calls", 200, { ...ok, total: 3 })).toMatch(
      /GET \/admin\/calls's schema.*total/s,
    );
    expect(answerProblem("GET", "/admin/calls", 200, { cursor: "abc" })).toMatch(/items/);
    expect(answerProblem("GET", "/admin/stats", 200, { since: "yesterday" })).toMatch(/since/);
    // An error with a code the route does not declare, a status it does not, a route the document lacks.
    const error = { error: "call_not_found", message: "The ledger has no call with Id x." };
    expect(answerProblem("GET", "/admin/calls/x", 404, error)).toBeUndefined();
    expect(answerProblem("GET", "/admin/deliveries/x", 404, error)).toMatch(/error/);
    expect(answerProblem("GET", "/admin/calls/x", 409, error)).toMatch(
      /a status that GET \/admin\/calls\/:id does not/,
    );
    expect(answerProblem("GET", "/admin/nothing", 404, error)).toMatch(/no route/);
  });

  it("finds the route of a request, a route without parameters first", () => {
    expect(routeOf("POST", "/admin/dead-letters/replay")).toBe("POST /admin/dead-letters/replay");
    expect(routeOf("POST", "/admin/dead-letters/abc.wms/replay")).toBe("POST /admin/dead-letters/:id/replay");
    expect(routeOf("get", "/admin/calls/123")).toBe("GET /admin/calls/:id");
    expect(routeOf("GET", "/admin/calls/")).toBeUndefined();
    expect(routeOf("PATCH", "/admin/rules")).toBeUndefined();
    expect(answerSchema("GET /admin/calls/:id", 418)).toBeUndefined();
  });
});

describe("every route", () => {
  beforeAll(async () => {
    await clearLedger();
    await putRules(EXAMPLE_RULES);
  });
  afterEach(() => vi.restoreAllMocks());

  /** Calls the API and checks the answer against the schema the document gives for its route and status. */
  async function call(method: string, path: string, init: RequestInit = {}): Promise<{ status: number; json: any }> {
    const response = await admin(path, { ...init, method });
    const json = await response.json();
    const pathname = new URL(`https://relay.test/admin${path}`).pathname;
    expect(answerProblem(method, pathname, response.status, json)).toBeUndefined();
    return { status: response.status, json };
  }

  it("answers as its schema says, for success and for its errors", async () => {
    // The shop takes every call; the WMS refuses for good (410), so its deliveries become dead letters.
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input) =>
      String(input instanceof Request ? input.url : input).includes("wms")
        ? new Response(null, { status: 410 })
        : new Response(null, { status: 200 }),
    );
    const [id, other] = [freshId(), freshId()];
    for (const call of [id, other]) {
      const body = FIXTURES["OrderCreated.json"]!.replace(/"Id":"[0-9a-f]+"/, `"Id":"${call}"`);
      expect((await signedPost(body)).status).toBe(202);
    }
    for (const settled of [id, other]) {
      await eventually(async () => {
        const { status, json } = await call("GET", `/calls/${settled}`);
        expect(status).toBe(200);
        expect(json.deliveries.map((d: { status: string }) => d.status).sort()).toEqual(["dead", "delivered"]);
      }, 25_000);
    }

    const rules = JSON.stringify(EXAMPLE_RULES);
    const answers: [string, string, RequestInit?][] = [
      ["GET", "/whoami"],
      ["GET", "/openapi.json"],
      ["GET", "/rules"],
      ["POST", "/rules/validate", { body: rules }],
      ["POST", "/rules/validate", { body: "{}" }],
      ["PUT", "/rules", { body: rules }],
      ["PUT", "/rules", { body: "{not json" }],
      ["GET", "/rules/versions?limit=1"],
      ["GET", "/rules/versions/1"],
      ["GET", "/rules/versions/999"],
      ["GET", "/rules/versions/x"],
      ["POST", "/rules/versions/1/restore"],
      ["POST", "/route", { body: FIXTURES["OrderCreated.json"] }],
      ["POST", "/route", { body: JSON.stringify({ envelope: JSON.parse(FIXTURES["OrderCreated.json"]!), rules: {} }) }],
      ["POST", "/route", { body: "[]" }],
      ["GET", "/calls?limit=2"],
      ["GET", `/calls/${id}`],
      ["GET", "/calls?status=lost"],
      ["GET", "/calls/no-such-call"],
      ["GET", `/deliveries?destination=shop`],
      ["GET", `/deliveries/${id}.shop`],
      ["GET", "/deliveries/no-such-delivery"],
      ["POST", `/deliveries/${id}.shop/replay`],
      ["GET", "/stats"],
      ["GET", "/stats?since=soon"],
      ["POST", "/ledger/redrive"],
      ["GET", "/dead-letters"],
      ["GET", `/dead-letters/${id}.wms`],
      ["GET", "/dead-letters/nope"],
      ["POST", `/dead-letters/${id}.wms/replay`],
      ["DELETE", "/dead-letters/nope"],
      ["DELETE", `/dead-letters/${other}.wms`],
      ["POST", "/dead-letters/replay?destination=wms"],
      ["GET", "/deliveries/count?destination=wms&status=dead"],
      ["GET", "/deliveries/count?status=lost"],
      ["POST", "/deliveries/replay", { body: JSON.stringify({ destination: "shop", status: "delivered" }) }],
      ["POST", "/deliveries/replay", { body: JSON.stringify({ since: "yesterday" }) }],
      ["POST", "/dead-letters/delete", { body: JSON.stringify({ destination: "nowhere" }) }],
      ["GET", "/jobs"],
      ["GET", "/jobs/1"],
      ["GET", "/jobs/x"],
      ["GET", "/stats/hourly?range=7d"],
      ["GET", "/stats/hourly?range=1y"],
      ["GET", "/alerts?limit=5"],
      ["POST", "/destinations/shop/probe"],
      ["GET", "/destinations"],
      ["GET", "/destinations/wms"],
      ["GET", "/destinations/nowhere"],
      ["POST", "/destinations/shop/pause"],
      ["POST", "/destinations/shop/resume"],
      ["POST", "/destinations/nowhere/probe"],
      ["GET", "/activity?limit=5"],
      ["GET", "/activity?action=nothing"],
      ["GET", "/activity/1"],
      ["GET", "/activity/0"],
      ["GET", "/sessions"],
      ["POST", "/sessions/end-all"],
      ["POST", "/destinations/shop/pause", { headers: { authorization: `Bearer ${VIEWER_TOKEN}` } }],
      ["GET", "/calls", { headers: { authorization: "Bearer wrong" } }],
    ];
    const statuses = new Map<string, Set<number>>();
    for (const [method, path, init] of answers) {
      const { status } = await call(method, path, init);
      const key = routeOf(method, new URL(`https://relay.test/admin${path}`).pathname)!;
      statuses.set(key, new Set([...(statuses.get(key) ?? []), status]));
    }
    // Every route was called, and answered its success at least once (a probe's success needs a destination its
    // circuit breaker paused: test/gate/gate.test.ts checks that answer against its schema).
    for (const key of API_KEYS) {
      if (key === "POST /admin/destinations/:name/probe") expect(statuses.get(key), key).toContain(409);
      else expect(statuses.get(key), key).toContain(API[key].ok.status);
    }
  }, 60_000);
});
