import { env } from "cloudflare:workers";
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { getCall } from "../../src/ledger/calls.ts";
import { QUEUES } from "../../src/queues/names.ts";
import {
  consume,
  deadLetterRecord,
  EXAMPLE_RULES,
  envelope,
  eventually,
  FIXTURE_SECRET,
  freshId,
  putRules,
  signedPost,
} from "../helpers.ts";
import { consoleFetch, csrfIn, csrfOf, expectRedirect, page, postForm, postLogin, signIn, textOf } from "./helpers.ts";

const MARKUP = "<img src=x onerror=alert(1)>";
const ESCAPED = "&lt;img src=x onerror=alert(1)&gt;";

let cookie: string;
let callId: string;
let deadLetterId: string;

beforeAll(async () => {
  await putRules(EXAMPLE_RULES);
  vi.spyOn(globalThis, "fetch").mockImplementation(async () => new Response("ok"));
  // A call whose order number is markup, delivered to wms and shop, and a dead letter.
  callId = freshId();
  const body = envelope(
    [{ Action: "OrderCreated", Details: { OrderNumber: MARKUP, OrderType: "NormalOrder", Note: MARKUP } }],
    callId,
  );
  expect((await signedPost(body)).status).toBe(202);
  await eventually(async () => {
    const trace = await getCall(env.LEDGER, callId);
    expect(trace?.deliveries.map((d) => d.status)).toEqual(["delivered", "delivered"]);
  }, 25_000);
  const record = deadLetterRecord("wms");
  deadLetterId = record.deliveryId;
  expect((await consume(QUEUES.deadLetters, [record])).explicitAcks).toHaveLength(1);
  vi.restoreAllMocks();
  cookie = await signIn();
}, 60_000);

beforeEach(() => putRules(EXAMPLE_RULES));
afterEach(() => vi.restoreAllMocks());

const kvRules = async () => JSON.parse((await env.RULES.get("rules", "text")) ?? "null") as unknown;
const replacement = JSON.stringify({ version: 1, destinations: {}, routes: [] });

/** Every page the console has, signed in, including its error pages. */
function pages(): [string, string, number][] {
  return [
    ["overview", "/console", 200],
    ["calls", "/console/calls", 200],
    ["calls search", `/console/calls?q=${encodeURIComponent(MARKUP)}`, 200],
    ["call", `/console/calls/${callId}`, 200],
    ["dead letters", "/console/dead-letters", 200],
    ["dead letter", `/console/dead-letters/${encodeURIComponent(deadLetterId)}`, 200],
    ["destinations", "/console/destinations", 200],
    ["rules", "/console/rules", 200],
    ["try", "/console/try?sample=OrderCreated", 200],
    ["unknown call (404)", "/console/calls/0000000000000000000000000000dead", 404],
    ["unknown page (404)", "/console/nothing-here", 404],
    ["bad parameter (400)", "/console/calls?status=lost", 400],
  ];
}

describe("every console response", () => {
  const CSP = [
    "default-src 'none'",
    "style-src 'self'",
    "img-src 'self' data:",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ];

  function expectHeaders(response: Response, what: string) {
    const csp = response.headers.get("content-security-policy") ?? "";
    expect(csp.split("; ").sort(), what).toEqual([...CSP].sort());
    expect(response.headers.get("x-frame-options"), what).toBe("DENY");
    expect(response.headers.get("referrer-policy"), what).toBe("no-referrer");
    expect(response.headers.get("x-content-type-options"), what).toBe("nosniff");
  }

  it("carries a strict Content-Security-Policy (no script at all), DENY framing, no referrer, and no-store", async () => {
    const login = await consoleFetch("/console/login");
    expectHeaders(login, "login");
    expect(login.headers.get("cache-control")).toBe("no-store");
    for (const [name, path, status] of pages()) {
      const response = await page(path, cookie);
      expect(response.status, name).toBe(status);
      expect(response.headers.get("content-type"), name).toContain("text/html");
      expectHeaders(response, name);
      expect(response.headers.get("cache-control"), name).toBe("no-store");
      const html = await response.text();
      expect(html.startsWith("<!doctype html>"), name).toBe(true);
      // No script element and no event-handler attribute (attribute values blanked first: they may hold text).
      expect(html.replaceAll(/"[^"]*"/g, '""'), name).not.toMatch(/<script|<[a-z][^>]*\son[a-z]+=/i);
    }
    const redirect = await page("/console");
    expectHeaders(redirect, "redirect to sign-in");
    const css = await consoleFetch("/console/style.css");
    expect(css.headers.get("content-type")).toContain("text/css");
    expectHeaders(css, "style.css");
  });

  it("never holds a secret's value, on any page or in a redirect", async () => {
    const secrets = [env.ADMIN_TOKEN, FIXTURE_SECRET, env.WMS_SECRET, env.SHOP_SECRET, env.SHOP_API_KEY] as string[];
    const seen: string[] = [];
    const byName = new Map<string, string>();
    for (const [name, path] of pages()) {
      const html = await (await page(path, cookie)).text();
      byName.set(name, html);
      seen.push(html);
    }
    const tried = await postForm("/console/try", cookie, {
      envelope: envelope([{ Action: "OrderCreated", Details: {} }]),
    });
    seen.push(await tried.text());
    const save = await postForm("/console/rules", cookie, { document: JSON.stringify(EXAMPLE_RULES), intent: "save" });
    seen.push(await save.text());
    const signedIn = await postLogin(env.ADMIN_TOKEN as string);
    seen.push(signedIn.headers.get("location") ?? "", signedIn.headers.get("set-cookie") ?? "");
    for (const text of seen) for (const secret of secrets) expect(text).not.toContain(secret);
    // The destinations page names the secrets instead.
    const destinations = textOf(byName.get("destinations")!);
    expect(destinations).toContain("ms-signature with secret WMS_SECRET");
    expect(destinations).toContain("X-Api-Key: secret SHOP_API_KEY");
  });
});

describe("what a payload holds is shown as text", () => {
  it("on the call's page and in the search, markup escaped", async () => {
    const call = await (await page(`/console/calls/${callId}`, cookie)).text();
    expect(call).not.toContain(MARKUP);
    expect(call).toContain(ESCAPED);
    const search = await (await page(`/console/calls?q=${encodeURIComponent(MARKUP)}`, cookie)).text();
    expect(search).not.toContain(MARKUP);
    expect(search).toContain(ESCAPED);
    expect(search).toContain(`/console/calls/${callId}`);
  });

  it("in the dry run's editor and its tables", async () => {
    const body = envelope([{ Action: MARKUP, Details: { OrderNumber: MARKUP } }]);
    const response = await postForm("/console/try", cookie, { envelope: body });
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).not.toContain(MARKUP);
    expect(html).toContain(ESCAPED);
  });
});

describe("a state-changing form", () => {
  it("from another origin is refused with 403 and changes nothing", async () => {
    const csrf = await csrfOf(cookie);
    const send = vi.spyOn(env.DELIVERIES, "sendBatch");
    const foreign = { csrf, origin: "https://evil.test" };
    const saved = await postForm("/console/rules/save", cookie, { document: replacement, base: "none" }, foreign);
    expect(saved.status).toBe(403);
    expect(saved.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(textOf(await saved.text())).toContain("nothing was done");
    expect(await kvRules()).toEqual(EXAMPLE_RULES);
    const resent = await postForm(`/console/deliveries/${callId}.wms/resend`, cookie, { call: callId }, foreign);
    expect(resent.status).toBe(403);
    const replayed = await postForm(
      `/console/dead-letters/${encodeURIComponent(deadLetterId)}/replay`,
      cookie,
      {},
      foreign,
    );
    expect(replayed.status).toBe(403);
    expect(send).not.toHaveBeenCalled();
    expect((await page(`/console/dead-letters/${encodeURIComponent(deadLetterId)}`, cookie)).status).toBe(200);
  });

  it("without the CSRF field, or with another session's, is refused with 403 and changes nothing", async () => {
    const send = vi.spyOn(env.DELIVERIES, "sendBatch");
    const other = await csrfOf(await signIn());
    for (const csrf of [false, other, ""] as const) {
      const saved = await postForm("/console/rules/save", cookie, { document: replacement, base: "none" }, { csrf });
      expect(saved.status, String(csrf)).toBe(403);
      const resent = await postForm(`/console/deliveries/${callId}.wms/resend`, cookie, { call: callId }, { csrf });
      expect(resent.status).toBe(403);
      const deleted = await postForm(
        `/console/dead-letters/${encodeURIComponent(deadLetterId)}/delete`,
        cookie,
        {},
        { csrf },
      );
      expect(deleted.status).toBe(403);
    }
    expect(await kvRules()).toEqual(EXAMPLE_RULES);
    expect(send).not.toHaveBeenCalled();
    expect((await page(`/console/dead-letters/${encodeURIComponent(deadLetterId)}`, cookie)).status).toBe(200);
  });

  it("without a session redirects to the sign-in form and changes nothing", async () => {
    const html = await (await page("/console/rules", cookie)).text();
    const response = await consoleFetch("/console/rules/save", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: "https://relay.test" },
      body: new URLSearchParams({ document: replacement, base: "none", csrf: csrfIn(html) }).toString(),
    });
    expectRedirect(response, "/console/login");
    expect(await kvRules()).toEqual(EXAMPLE_RULES);
  });
});
