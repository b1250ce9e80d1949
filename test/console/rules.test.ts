import { env } from "cloudflare:workers";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { PREVIOUS_RULES_KEY, RULES_KEY } from "../../src/kv-keys.ts";
import { readStoredRules } from "../../src/rules/save.ts";
import { admin, EXAMPLE_RULES, putRules } from "../helpers.ts";
import { expectRedirect, page, postForm, signIn, textOf } from "./helpers.ts";

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

  it("saves after a confirmation step, keeps the replaced document, and restores it in one (confirmed) step", async () => {
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
    expectRedirect(saved, "/console/rules?notice=rules_saved");
    expect(await kv()).toEqual(REPLACEMENT);
    expect(await kv(PREVIOUS_RULES_KEY)).toEqual(EXAMPLE_RULES);
    const after = (await readStoredRules(env.RULES))!;
    expect(after.savedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    const editor = textOf(await (await page("/console/rules?notice=rules_saved", cookie)).text());
    expect(editor).toContain("The rules are saved.");
    expect(editor).toContain(`Previous version ${before.hash}`);

    const askRestore = await postForm("/console/rules/restore", cookie);
    expect(askRestore.status).toBe(200);
    const restoreHtml = await askRestore.text();
    expect(textOf(restoreHtml)).toContain("Restore the previous version?");
    expect(await kv(), "asking restores nothing").toEqual(REPLACEMENT);
    const restored = await postForm("/console/rules/restore/confirm", cookie, {
      base: fieldIn(restoreHtml, "base")!,
      previous: fieldIn(restoreHtml, "previous")!,
    });
    expectRedirect(restored, "/console/rules?notice=rules_restored");
    expect(await kv()).toEqual(EXAMPLE_RULES);
    expect(await kv(PREVIOUS_RULES_KEY), "the restore can be undone too").toEqual(REPLACEMENT);
  });

  it("saves nothing when the stored rules changed since the editor was opened (409)", async () => {
    const base = (await readStoredRules(env.RULES))!.hash;
    await putRules({ ...EXAMPLE_RULES, routes: [] });
    const response = await postForm("/console/rules/save", cookie, { document: pretty(REPLACEMENT), base });
    expect(response.status).toBe(409);
    const text = textOf(await response.text());
    expect(text).toContain("The stored rules changed since you opened them, so nothing was saved.");
    expect(text).toContain('"orders-to-crm"');
    expect(await kv()).toEqual({ ...EXAMPLE_RULES, routes: [] });
  });

  it("is the same code as PUT /admin/rules, which keeps the replaced document for undo too", async () => {
    const response = await admin("/rules", { method: "PUT", body: JSON.stringify(REPLACEMENT) });
    expect(response.status).toBe(200);
    expect(await kv(PREVIOUS_RULES_KEY)).toEqual(EXAMPLE_RULES);
    const html = textOf(await (await page("/console/rules", cookie)).text());
    expect(html).toContain("Restore the previous version");
  });
});
