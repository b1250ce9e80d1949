import { describe, expect, it } from "vitest";
import { validateRules } from "../../src/rules/schema.ts";
import { EXAMPLE_RULES } from "../helpers.ts";

const base = () => structuredClone(EXAMPLE_RULES) as Record<string, any>;

function issues(document: unknown) {
  const result = validateRules(document);
  expect(result.ok).toBe(false);
  return result.ok ? [] : result.issues;
}

describe("rules validation", () => {
  it("accepts the SPEC example and fills the defaults", () => {
    const result = validateRules(base());
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.rules.destinations.wms).toMatchObject({
      timeoutMs: 10000,
      maxAttempts: 12,
      mode: "envelope",
      enabled: true,
      headers: {},
    });
    expect(result.rules.routes[0]!.enabled).toBe(true);
    expect(result.warnings).toEqual([]);
  });

  it("names an unknown destination by its path", () => {
    const doc = base();
    doc.routes[1].to = ["wms", "nowhere"];
    expect(issues(doc)).toEqual([{ path: "routes[1].to[1]", message: 'unknown destination "nowhere"' }]);
  });

  it("refuses duplicate route names", () => {
    const doc = base();
    doc.routes[2].name = doc.routes[0].name;
    expect(issues(doc)).toEqual([{ path: "routes[2].name", message: `duplicate route name "${doc.routes[0].name}"` }]);
  });

  it.each([
    ["http://wms.example.com/x", "https"],
    ["ftp://wms.example.com/x", "https"],
    ["not a url", "absolute URL"],
    ["https://user:pw@wms.example.com/", "credentials"],
  ])("refuses the destination URL %s", (url, wording) => {
    const doc = base();
    doc.destinations.wms.url = url;
    const [issue] = issues(doc);
    expect(issue!.path).toBe("destinations.wms.url");
    expect(issue!.message).toContain(wording);
  });

  it("allows http only for localhost and 127.0.0.1", () => {
    for (const url of ["http://localhost:9000/x", "http://127.0.0.1:9000/x"]) {
      const doc = base();
      doc.destinations.wms.url = url;
      expect(validateRules(doc).ok).toBe(true);
    }
  });

  it.each([
    [(d: any) => (d.destinations.shop.timeoutMs = 500), "destinations.shop.timeoutMs"],
    [(d: any) => (d.destinations.shop.maxAttempts = 101), "destinations.shop.maxAttempts"],
    [(d: any) => (d.destinations.shop.mode = "batch"), "destinations.shop.mode"],
    [(d: any) => (d.destinations.wms.signing = { scheme: "ms-signature" }), "destinations.wms.signing.secret"],
    [(d: any) => (d.destinations.wms.signing = { scheme: "hmac", secret: "X" }), "destinations.wms.signing.scheme"],
    [
      (d: any) => (d.destinations.shop.headers = { "X-Relay-Attempt": "1" }),
      "destinations.shop.headers.X-Relay-Attempt",
    ],
    [(d: any) => (d.destinations.shop.headers = { "X-Bad": "a\r\nb" }), "destinations.shop.headers.X-Bad"],
    [(d: any) => (d.destinations.shop.url2 = "typo"), "destinations.shop"],
    [(d: any) => (d.routes[0].actions = []), "routes[0].actions"],
    [(d: any) => (d.routes[0].actions = ["Order*Created"]), "routes[0].actions[0]"],
    [(d: any) => (d.routes[0].to = []), "routes[0].to"],
    [(d: any) => (d.routes[0].where = { "Details.X": { startsWith: "a" } }), "routes[0].where.Details.X"],
    [(d: any) => (d.routes[0].where = { "Details..X": "a" }), "routes[0].where.Details..X"],
    [(d: any) => (d.version = 2), "version"],
    [(d: any) => (d.destinations["bad id!"] = { url: "https://x.test/" }), "destinations.bad id!"],
  ])("names the path of each problem (%#)", (mutate, path) => {
    const doc = base();
    mutate(doc);
    expect(issues(doc).map((i) => i.path)).toContain(path);
  });

  it("warns about unknown Action names without refusing the document", () => {
    const doc = base();
    doc.routes[0].actions = ["AvailableBalanceChange", "Purch*", "Nope*", "*"];
    const result = validateRules(doc);
    expect(result.ok).toBe(true);
    expect(result.warnings.map((w) => w.path)).toEqual(["routes[0].actions[0]", "routes[0].actions[2]"]);
    expect(result.warnings[0]!.message).toContain("AvailableBalanceChange");
  });

  it("reports secrets the environment lacks as warnings when given the environment", () => {
    const result = validateRules(base(), { WMS_SECRET: "x", SHOP_API_KEY: "y" });
    expect(result.warnings).toEqual([
      {
        path: "destinations.shop.signing.secret",
        message:
          'secret SHOP_SECRET is not set in the Worker\'s environment; deliveries to "shop" will dead-letter until it is',
      },
    ]);
  });
});
