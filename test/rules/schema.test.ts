import { describe, expect, it } from "vitest";
import { validateRules, validateRulesText } from "../../src/rules/schema.ts";
import { EXAMPLE_RULES } from "../helpers.ts";

const base = () => structuredClone(EXAMPLE_RULES) as Record<string, any>;

function issues(document: unknown) {
  const result = validateRules(document);
  expect(result.ok).toBe(false);
  return result.ok ? [] : result.issues;
}

describe("rules validation", () => {
  it("accepts the documented example and fills the defaults", () => {
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

describe("a rules document's text", () => {
  it("that is not JSON is one issue at (root) saying why; valid text comes back parsed; invalid is refused by path", () => {
    const broken = validateRulesText('{"destinations": ');
    expect(broken.ok).toBe(false);
    expect(!broken.ok && broken.issues).toEqual([
      { path: "(root)", message: expect.stringMatching(/^is not JSON: .+/) as unknown as string },
    ]);
    const text = JSON.stringify(EXAMPLE_RULES);
    const valid = validateRulesText(text);
    expect(valid.ok).toBe(true);
    expect(valid.document).toEqual(JSON.parse(text));
    const invalid = validateRulesText(JSON.stringify({ ...EXAMPLE_RULES, routes: "all" }));
    expect(!invalid.ok && invalid.issues.map((i) => i.path)).toEqual(["routes"]);
  });
});

describe("operations fields (docs/flow-control.md, docs/alerts.md)", () => {
  it("takes limits, a tech contact and an alert webhook, and turns the circuit breaker on by default", () => {
    const doc = base();
    doc.destinations.shop = {
      ...doc.destinations.shop,
      techContact: "shop-ops@example.com",
      alertWebhook: { secret: "SHOP_SLACK_HOOK" },
      rateLimit: { perSecond: 5 },
      concurrency: 2,
      circuit: { failures: 50 },
    };
    doc.destinations.wms.rateLimit = { perMinute: 600 };
    const result = validateRules(doc);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.rules.destinations.shop).toMatchObject({
      techContact: "shop-ops@example.com",
      rateLimit: { perSecond: 5 },
      concurrency: 2,
      circuit: { failures: 50, cooldownSeconds: 300 },
    });
    expect(result.rules.destinations.wms!.circuit).toEqual({ failures: 20, cooldownSeconds: 300 });
    doc.destinations.wms.circuit = false;
    expect(validateRules(doc)).toMatchObject({ ok: true, rules: { destinations: { wms: { circuit: false } } } });
  });

  it.each([
    [{ rateLimit: { perSecond: 0 } }, "destinations.shop.rateLimit.perSecond", "Too small"],
    [{ rateLimit: { perSecond: 1001 } }, "destinations.shop.rateLimit.perSecond", "Too big"],
    [{ rateLimit: { perMinute: 60_001 } }, "destinations.shop.rateLimit.perMinute", "Too big"],
    [{ rateLimit: { perSecond: 1, perMinute: 60 } }, "destinations.shop.rateLimit", "exactly one of"],
    [{ rateLimit: {} }, "destinations.shop.rateLimit", "exactly one of"],
    [{ rateLimit: { perHour: 10 } }, "destinations.shop.rateLimit", "perHour"],
    [{ concurrency: 0 }, "destinations.shop.concurrency", "Too small"],
    [{ concurrency: 101 }, "destinations.shop.concurrency", "Too big"],
    [{ concurrency: 1.5 }, "destinations.shop.concurrency", "expected int"],
    [{ circuit: { failures: 0 } }, "destinations.shop.circuit.failures", "Too small"],
    [{ circuit: { cooldownSeconds: 3601 } }, "destinations.shop.circuit.cooldownSeconds", "Too big"],
    [{ circuit: true }, "destinations.shop.circuit", ""],
    [{ techContact: "shop team" }, "destinations.shop.techContact", "must be an email address"],
    [{ techContact: "ops@localhost" }, "destinations.shop.techContact", "must be an email address"],
    [{ alertWebhook: "http://chat.example.com/hook" }, "destinations.shop.alertWebhook", "https"],
    [{ alertWebhook: "hooks.slack.com/services/x" }, "destinations.shop.alertWebhook", "absolute URL"],
    [{ alertWebhook: { secret: "ADMIN_TOKEN" } }, "destinations.shop.alertWebhook.secret", "relay's own secrets"],
    [{ alertWebhook: { secret: "ALERT_WEBHOOK" } }, "destinations.shop.alertWebhook.secret", "relay's own secrets"],
  ])("refuses %j at its path", (fields, path, message) => {
    const doc = base();
    doc.destinations.shop = { ...doc.destinations.shop, ...fields };
    const found = issues(doc);
    expect(found.map((i) => i.path)).toContain(path);
    expect(found.find((i) => i.path === path)!.message).toContain(message);
  });
});

describe("what the rules may not do", () => {
  it.each([
    [
      "a header",
      (d: any) => (d.destinations.shop.headers["X-Token"] = { secret: "ADMIN_TOKEN" }),
      "destinations.shop.headers.X-Token.secret",
    ],
    [
      "a signing secret",
      (d: any) => (d.destinations.wms.signing.secret = "EXTEND_WEBHOOK_SECRET"),
      "destinations.wms.signing.secret",
    ],
    [
      "a previous signing secret",
      (d: any) => (d.destinations.shop.signing.secret = "EXTEND_WEBHOOK_SECRET_PREVIOUS"),
      "destinations.shop.signing.secret",
    ],
    ["a URL", (d: any) => (d.destinations.wms.url = { secret: "ADMIN_TOKEN" }), "destinations.wms.url.secret"],
  ])("refuses the relay's own secrets as %s", (_, mutate, path) => {
    const doc = base();
    mutate(doc);
    const found = issues(doc);
    expect(found.map((i) => i.path)).toContain(path);
    expect(found.find((i) => i.path === path)!.message).toContain("relay's own secrets");
  });

  it.each([
    [
      '{"version":1,"destinations":{},"routes":[{"name":"r","actions":["*"],"to":["wms"],"where":{"__proto__":{"exists":false}}}]}',
      "routes[0].where.__proto__",
    ],
    ['{"version":1,"destinations":{"__proto__":{"url":"https://x.test/"}},"routes":[]}', "destinations.__proto__"],
    ['{"version":1,"destinations":{"constructor":{"url":"https://x.test/"}},"routes":[]}', "destinations.constructor"],
    [
      '{"version":1,"destinations":{"a":{"url":"https://x.test/","headers":{"__proto__":"x"}}},"routes":[]}',
      "destinations.a.headers.__proto__",
    ],
    [
      '{"version":1,"destinations":{"a":{"url":"https://x.test/","headers":{"prototype":"x"}}},"routes":[]}',
      "destinations.a.headers.prototype",
    ],
    [
      '{"version":1,"destinations":{"a":{"url":"https://x.test/"}},"routes":[{"name":"r","actions":["*"],"to":["a"],"where":{"Details.constructor.name":"Object"}}]}',
      "routes[0].where.Details.constructor.name",
    ],
  ])("refuses a key JavaScript treats specially, naming its path: %s", (text, path) => {
    const found = issues(JSON.parse(text));
    expect(found).toEqual([{ path, message: expect.stringContaining("__proto__, constructor and prototype") }]);
  });

  it("takes a URL kept in a Worker secret, and names that secret among the ones the rules need", () => {
    const doc = base();
    doc.destinations.wms.url = { secret: "WMS_URL" };
    const result = validateRules(doc, { WMS_SECRET: "x", SHOP_SECRET: "whsec_eA==", SHOP_API_KEY: "y" });
    expect(result.ok).toBe(true);
    expect(result.warnings.map((w) => w.path)).toEqual(["destinations.wms.url"]);
  });
});

describe("the key check", () => {
  it("walks a document of any depth without overflowing the stack, and still finds __proto__ at the bottom", () => {
    let deep: unknown = JSON.parse('{"__proto__": 1}');
    for (let i = 0; i < 20_000; i++) deep = { a: deep };
    const result = validateRules({ version: 1, destinations: {}, routes: [], x: deep });
    expect(result.ok).toBe(false);
    const issues = result.ok ? [] : result.issues;
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path).toBe(`x${".a".repeat(20_000)}.__proto__`);
  });
});
