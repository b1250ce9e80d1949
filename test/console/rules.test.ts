import { env } from "cloudflare:workers";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { PREVIOUS_RULES_KEY, RULES_KEY } from "../../src/kv-keys.ts";
import { listActivity } from "../../src/ledger/activity.ts";
import { listVersions } from "../../src/ledger/rules-history.ts";
import { readStoredRules } from "../../src/rules/save.ts";
import { admin, clearLedger, EXAMPLE_RULES, putRules, VIEWER_TOKEN } from "../helpers.ts";
import { csrfIn, expectRedirect, noticeCookieOf, page, postForm, signIn, textOf } from "./helpers.ts";

let cookie: string;
beforeAll(async () => {
  cookie = await signIn();
});
beforeEach(async () => {
  await env.RULES.delete(PREVIOUS_RULES_KEY);
  await putRules(EXAMPLE_RULES);
});

const kv = async (key = RULES_KEY) => JSON.parse((await env.RULES.get(key, "text")) ?? "null") as unknown;
const fieldIn = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1];

const REPLACEMENT = {
  version: 1,
  destinations: {
    crm: { url: "https://crm.test/in", signing: { scheme: "ms-signature", secret: "CRM_SECRET" } },
  },
  routes: [{ name: "orders-to-crm", actions: ["OrderCreated"], to: ["crm"] }],
};

/** The document with its keys on lines of their own, as a person edits it. */
const pretty = (document: unknown) => JSON.stringify(document, null, 2);

describe("the rules editor", () => {
  it("shows the stored document in a labelled text area, and its version", async () => {
    const response = await page("/console/rules", cookie);
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toContain('<label for="document">');
    expect(html).toMatch(/<textarea id="document" name="document"/);
    const stored = (await readStoredRules(env.RULES))!;
    expect(textOf(html)).toContain(`Version ${stored.hash}`);
    expect(textOf(html)).toContain('"stock-yx-to-shop"');
  });

  it("refuses an invalid document with each issue next to its path and line, and stores nothing", async () => {
    const broken = structuredClone(EXAMPLE_RULES) as { routes: { to: string[] }[] };
    broken.routes[1]!.to = ["nowhere"];
    const text = pretty(broken);
    const line = text.split("\n").findIndex((l) => l.includes('"nowhere"')) + 1;
    for (const intent of ["check", "save"]) {
      const response = await postForm("/console/rules", cookie, { document: text, intent, base: "x" });
      expect(response.status, intent).toBe(422);
      const html = await response.text();
      expect(textOf(html)).toContain(`routes[1].to[0] (line ${line}): unknown destination "nowhere"`);
      expect(html).toContain('aria-invalid="true"');
      // The text stays in the editor, as typed.
      expect(textOf(html)).toContain('"nowhere"');
    }
    const notJson = await postForm("/console/rules", cookie, { document: "{ nope", intent: "save", base: "x" });
    expect(notJson.status).toBe(422);
    expect(textOf(await notJson.text())).toContain("(root): is not JSON");
    expect(await kv()).toEqual(EXAMPLE_RULES);
    expect(await env.RULES.get(PREVIOUS_RULES_KEY)).toBeNull();
  });

  it("checks a valid document without storing it, with the warnings (a secret the Worker lacks)", async () => {
    const response = await postForm("/console/rules", cookie, { document: pretty(REPLACEMENT), intent: "check" });
    expect(response.status).toBe(200);
    const text = textOf(await response.text());
    expect(text).toContain("The document is valid. Nothing is stored until you save it.");
    expect(text).toContain("destinations.crm.signing.secret");
    expect(text).toContain("secret CRM_SECRET is not set");
    expect(await kv()).toEqual(EXAMPLE_RULES);
  });

  it("saves after a confirmation step, as a new version of the history, on record", async () => {
    await clearLedger();
    const before = (await readStoredRules(env.RULES))!;
    const ask = await postForm("/console/rules", cookie, {
      document: pretty(REPLACEMENT),
      intent: "save",
      base: before.hash,
    });
    expect(ask.status).toBe(200);
    const confirmation = await ask.text();
    expect(textOf(confirmation)).toContain("Save the rules?");
    expect(textOf(confirmation)).toContain("secret CRM_SECRET is not set");
    expect(textOf(confirmation)).toContain("destination crm is added");
    expect(textOf(confirmation)).toContain("route orders is removed");
    expect(fieldIn(confirmation, "base")).toBe(before.hash);
    expect(await kv(), "asking stores nothing").toEqual(EXAMPLE_RULES);

    const saved = await postForm("/console/rules/save", cookie, { document: pretty(REPLACEMENT), base: before.hash });
    expectRedirect(saved, "/console/rules");
    expect(await kv()).toEqual(REPLACEMENT);
    const after = (await readStoredRules(env.RULES))!;
    expect(after.savedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(after.version).toBe(2);
    // The document in KV before the first save is version 1, found there; the save is version 2.
    const versions = (await listVersions(env.LEDGER, { limit: 10 })).items;
    expect(versions.map((v) => [v.version, v.via, v.actor, v.hash])).toEqual([
      [2, "console", "admin-token", after.hash],
      [1, "kv", "(in KV before the history)", before.hash],
    ]);
    const [row] = (await listActivity(env.LEDGER, { action: "rules.save", limit: 1 })).items;
    expect(row).toMatchObject({
      actor: "admin-token",
      via: "console",
      target: "2",
      outcome: "ok",
      detail: { before: 1, after: 2 },
    });
    const editor = textOf(await (await page("/console/rules", `${cookie}; ${noticeCookieOf(saved)}`)).text());
    expect(editor).toContain("The rules are saved.");
    expect(editor).toMatch(/2 .* admin-token saved \(console\) [0-9a-f]{12} in force/);
  });

  it("shows a version's line diff against the rules in force, and restores it after confirmation, as a new version", async () => {
    // In force: the example rules, put back into KV around the relay by beforeEach. Version 2 is REPLACEMENT.
    const version = await page("/console/rules/versions/2", cookie);
    expect(version.status).toBe(200);
    const html = await version.text();
    expect(html).toContain('<span class="add">+    &quot;crm&quot;: {');
    expect(html).toContain('<span class="del">-      &quot;name&quot;: &quot;orders&quot;,');
    const ask = await postForm("/console/rules/versions/2/restore", cookie);
    expect(ask.status).toBe(200);
    const confirm = await ask.text();
    expect(textOf(confirm)).toContain("Restore version 2?");
    expect(await kv(), "asking restores nothing").toEqual(EXAMPLE_RULES);
    const restored = await postForm("/console/rules/versions/2/restore/confirm", cookie, {
      base: fieldIn(confirm, "base")!,
    });
    expectRedirect(restored, "/console/rules");
    expect(await kv()).toEqual(REPLACEMENT);
    // The document written around the relay joined the history first (3), then the restore (4).
    const versions = (await listVersions(env.LEDGER, { limit: 2 })).items;
    expect(versions.map((v) => [v.version, v.via, v.restoredFrom])).toEqual([
      [4, "console", 2],
      [3, "kv", undefined],
    ]);
    const [row] = (await listActivity(env.LEDGER, { action: "rules.restore", limit: 1 })).items;
    expect(row).toMatchObject({ target: "4", outcome: "ok", detail: { before: 3, after: 4, restored: 2 } });
    expect(textOf(await (await page("/console/rules", `${cookie}; ${noticeCookieOf(restored)}`)).text())).toContain(
      "Version 2 of the rules is back in force",
    );
  });

  it("saves nothing when the stored rules changed since the editor was opened (409)", async () => {
    const base = (await readStoredRules(env.RULES))!.hash;
    await putRules({ ...EXAMPLE_RULES, routes: [] });
    const response = await postForm("/console/rules/save", cookie, { document: pretty(REPLACEMENT), base });
    expect(response.status).toBe(409);
    const text = textOf(await response.text());
    expect(text).toContain("Someone saved the rules after you opened them, so nothing was saved");
    expect(text).not.toContain("another tab");
    expect(text).toContain('"orders-to-crm"');
    expect(await kv()).toEqual({ ...EXAMPLE_RULES, routes: [] });
  });

  it("is the same code as PUT /admin/rules, whose save joins the history too", async () => {
    const response = await admin("/rules", { method: "PUT", body: JSON.stringify(REPLACEMENT) });
    expect(response.status).toBe(200);
    const answer = await response.json<{ version: number; before: number }>();
    const [latest] = (await listVersions(env.LEDGER, { limit: 1 })).items;
    expect(latest).toMatchObject({ version: answer.version, via: "api", actor: "admin-token" });
    const html = textOf(await (await page("/console/rules", cookie)).text());
    expect(html).toContain("admin-token saved (admin API)");
  });

  it("imports the old one-step undo's rules:previous into the history on the first save, then drops the key", async () => {
    await clearLedger();
    await env.RULES.put(PREVIOUS_RULES_KEY, JSON.stringify({ version: 1, destinations: {}, routes: [] }));
    const response = await admin("/rules", { method: "PUT", body: JSON.stringify(REPLACEMENT) });
    expect(await response.json()).toMatchObject({ version: 3, before: 2 });
    const versions = (await listVersions(env.LEDGER, { limit: 10 })).items;
    expect(versions.map((v) => [v.version, v.via])).toEqual([
      [3, "api"],
      [2, "kv"],
      [1, "kv"],
    ]);
    expect(await env.RULES.get(PREVIOUS_RULES_KEY)).toBeNull();
  });

  it("shows a viewer the document and the history, and no form; a viewer's save is refused and on record", async () => {
    const viewer = await signIn(VIEWER_TOKEN);
    const html = await (await page("/console/rules", viewer)).text();
    expect(html).not.toContain("<textarea");
    expect(html).not.toContain('action="/console/rules/save"');
    expect(textOf(html)).toContain('"stock-yx-to-shop"');
    expect(textOf(html)).toContain("History");
    const csrf = csrfIn(await (await page("/console", viewer)).text());
    const refused = await postForm(
      "/console/rules/save",
      viewer,
      { document: pretty(REPLACEMENT), base: "x" },
      { csrf },
    );
    expect(refused.status).toBe(403);
    expect(await kv()).toEqual(EXAMPLE_RULES);
    const [row] = (await listActivity(env.LEDGER, { actor: "viewer-token", limit: 1 })).items;
    expect(row).toMatchObject({ action: "rules.save", outcome: "forbidden", via: "console" });
  });
});

describe("a document nested too deep", () => {
  const DEEP = "[".repeat(100_000);
  const DEEP_VALID = `${"[".repeat(50_000)}${"]".repeat(50_000)}`;
  const DEEP_OBJECT = `{"version": 1, "destinations": {}, "routes": [], "x": ${'{"a":'.repeat(5_000)}1${"}".repeat(5_000)}}`;

  it.each([
    ["100,000 unclosed [", DEEP],
    ["50,000 nested arrays", DEEP_VALID],
    ["5,000 nested objects inside the rules", DEEP_OBJECT],
  ])("is refused with 422 and an issue at (root) naming the depth limit, not a crash (%s)", async (_, text) => {
    for (const intent of ["check", "save"]) {
      const response = await postForm("/console/rules", cookie, { document: text, intent, base: "x" });
      expect(response.status, intent).toBe(422);
      const shown = textOf(await response.text());
      expect(shown).toContain("(root): nests objects or arrays more than 64 levels deep");
    }
    expect(await kv()).toEqual(EXAMPLE_RULES);
  });
});
