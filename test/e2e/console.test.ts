/**
 * The console in a real browser (Debian's Chromium through playwright-core) against `wrangler dev` and real
 * receivers: sign in (and a wrong token refused), find a call by its order number and read its trace, replay a
 * dead letter once its receiver is fixed, edit the rules (an error shown by its path, then fixed and saved),
 * a dry run, sign out. Each page is checked with axe-core (no serious or critical violation) and saved as a
 * screenshot at 375 and 1280 px in test/e2e/screenshots/ (git-ignored).
 */

import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CallTrace } from "../../src/ledger/views.ts";
import {
  CHROMIUM,
  describeViolations,
  HAS_CHROMIUM,
  launchChromium,
  screenshots,
  seriousViolations,
} from "./lib/browser.ts";
import { ok, type Receiver, startReceiver } from "./lib/receivers.ts";
import { ADMIN_TOKEN, envelope, freshId, type Relay, startRelay, VIEWER_TOKEN, waitFor } from "./lib/relay.ts";

if (!HAS_CHROMIUM) {
  console.warn(
    `Skipping the console's browser tests: ${CHROMIUM} is missing (apt-get install chromium; .ci/run installs it).`,
  );
}

const ORDER_NUMBER = "E2E-4711";
const ids = { order: freshId(), product: freshId() };

let relay: Relay;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const receivers: Record<string, Receiver> = {};

async function trace(id: string): Promise<CallTrace | undefined> {
  const response = await relay.admin(`/calls/${id}`);
  return response.status === 200 ? ((await response.json()) as CallTrace) : undefined;
}

/** Checks the page with axe and saves its screenshots. */
async function review(name: string): Promise<void> {
  const violations = await seriousViolations(page);
  expect(violations, `${name}:\n${describeViolations(violations)}`).toEqual([]);
  await screenshots(page, name);
}

describe.skipIf(!HAS_CHROMIUM)(`the console in Chromium (${CHROMIUM})`, () => {
  beforeAll(async () => {
    receivers.wms = await startReceiver("wms", ok);
    receivers.shop = await startReceiver("shop", () => ({ status: 410 }));
    [relay, browser] = await Promise.all([
      startRelay({ vars: { RETRY_SCHEDULE: "1,1,1", RULES_CACHE_SECONDS: "0" } }),
      launchChromium(),
    ]);
    const put = await relay.admin("/rules", {
      method: "PUT",
      body: JSON.stringify({
        version: 1,
        destinations: { wms: { url: receivers.wms.url }, shop: { url: receivers.shop.url, maxAttempts: 3 } },
        routes: [
          { name: "orders", actions: ["OrderCreated"], to: ["wms"] },
          { name: "products", actions: ["ProductCreated"], to: ["shop"] },
        ],
      }),
    });
    expect(put.status).toBe(200);
    const order = { Action: "OrderCreated", Details: { OrderNumber: ORDER_NUMBER, OrderType: "NormalOrder" } };
    const product = { Action: "ProductCreated", Details: { ProductNumber: "SKU-4711" } };
    expect((await relay.send(envelope([order], ids.order))).status).toBe(202);
    expect((await relay.send(envelope([product], ids.product))).status).toBe(202);
    await waitFor("the order delivered and the product dead in the ledger", async () => {
      const [o, p] = await Promise.all([trace(ids.order), trace(ids.product)]);
      return o?.deliveries[0]?.status === "delivered" && p?.deliveries[0]?.status === "dead" ? true : undefined;
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await relay?.stop();
    await Promise.all(Object.values(receivers).map((r) => r.stop()));
  });

  it("sends a visitor without a session to the sign-in form, and refuses a wrong token (401, no cookie)", async () => {
    await page.goto(`${relay.url}/console/calls?q=${ORDER_NUMBER}`);
    expect(new URL(page.url()).pathname).toBe("/console/login");
    expect(new URL(page.url()).searchParams.get("next")).toBe(`/console/calls?q=${ORDER_NUMBER}`);
    await review("login");
    await page.getByLabel("Token").fill("not-the-token");
    const [answer] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === "POST"),
      page.getByRole("button", { name: "Sign in" }).click(),
    ]);
    expect(answer.status()).toBe(401);
    await expect.poll(() => page.getByRole("alert").textContent()).toContain("That is not a token of this relay");
    expect(await context.cookies()).toEqual([]);
  });

  it("signs in with the token, lands where it was going, and holds an HttpOnly, Secure, SameSite=Strict cookie", async () => {
    await page.getByLabel("Token").fill(ADMIN_TOKEN);
    await Promise.all([page.waitForURL(/\/console\/calls\?q=/), page.getByRole("button", { name: "Sign in" }).click()]);
    const [cookie] = await context.cookies();
    // Over http on loopback the __Host- prefix cannot be used; over https it is (test/console/sessions.test.ts).
    expect(cookie).toMatchObject({
      name: "console_session",
      httpOnly: true,
      secure: true,
      sameSite: "Strict",
      path: "/",
    });
    await page.goto(`${relay.url}/console`);
    await expect.poll(() => page.locator("h1").textContent()).toBe("Overview");
    expect(await page.locator("main").textContent()).toContain("wms");
    await review("overview");
  });

  it("finds a call by its order number and shows its trace", async () => {
    await page.goto(`${relay.url}/console/calls`);
    await page.getByLabel("Call Id or business key").fill(ORDER_NUMBER);
    await Promise.all([page.waitForURL(/q=E2E-4711/), page.getByRole("button", { name: "Search" }).click()]);
    expect(new URL(page.url()).search).toBe(`?q=${ORDER_NUMBER}`);
    await review("calls");
    await Promise.all([
      page.waitForURL(`**/console/calls/${ids.order}`),
      page.getByRole("link", { name: ids.order }).click(),
    ]);
    const main = (await page.locator("main").textContent()) ?? "";
    expect(main).toContain(ORDER_NUMBER);
    expect(main).toContain("products");
    expect(await page.locator("#delivery-wms").textContent()).toMatch(/wms\s*delivered/);
    expect(await page.locator("#delivery-wms table").textContent()).toContain("200");
    await review("call");
  });

  it("replays a dead letter once its receiver is fixed, and the count drops", async () => {
    await page.goto(`${relay.url}/console/dead-letters`);
    const byDestination = page.getByRole("region", { name: "Dead letters by destination" });
    expect(await byDestination.textContent()).toMatch(/shop\s*1/);
    await review("dead-letters");
    await Promise.all([
      page.waitForURL(/\/console\/dead-letters\/.+/),
      page.getByRole("link", { name: `${ids.product}.shop` }).click(),
    ]);
    expect(await page.locator("main").textContent()).toContain("permanent_failure");
    await review("dead-letter");
    receivers.shop!.behave(ok);
    await Promise.all([page.waitForURL(/notice=replayed/), page.getByRole("button", { name: "Replay" }).click()]);
    expect(await page.getByRole("status").textContent()).toContain("The dead letter was sent again");
    expect(await page.locator("main").textContent()).toContain("No dead letters.");
    await waitFor("the fixed receiver to get the replay", () =>
      receivers.shop!.delivered().length === 1 ? true : undefined,
    );
    await waitFor("the ledger to show the delivery delivered", async () =>
      (await trace(ids.product))?.deliveries[0]?.status === "delivered" ? true : undefined,
    );
  });

  it("shows the destinations with their settings, and pauses and resumes one", async () => {
    await page.goto(`${relay.url}/console/destinations`);
    expect(await page.locator("main").textContent()).toContain(receivers.wms!.url);
    await review("destinations");
    await Promise.all([page.waitForLoadState(), page.getByRole("button", { name: "Pause wms" }).click()]);
    expect(await page.locator("#destination-wms").textContent()).toContain("paused by hand");
    expect(await page.getByRole("status").textContent()).toContain("Paused: its deliveries are held");
    await review("destinations-paused");
    await Promise.all([page.waitForLoadState(), page.getByRole("button", { name: "Resume wms" }).click()]);
    expect(await page.locator("#destination-wms").textContent()).toContain("active");
  });

  it("shows a rules error next to its path, then saves the fixed document after confirmation", async () => {
    await page.goto(`${relay.url}/console/rules`);
    const editor = page.getByLabel("Rules document (JSON)");
    const document = JSON.parse(await editor.inputValue()) as {
      routes: { name: string; actions: string[]; to: string[] }[];
    };
    document.routes[0]!.to = ["nowhere"];
    await editor.fill(JSON.stringify(document, null, 2));
    await Promise.all([page.waitForLoadState(), page.getByRole("button", { name: "Check" }).click()]);
    await expect
      .poll(() => page.locator("#document-issues").textContent())
      .toMatch(/routes\[0\]\.to\[0\] \(line \d+\): unknown destination "nowhere"/);
    await review("rules-issue");
    document.routes[0]!.to = ["wms"];
    document.routes.push({ name: "customers", actions: ["CustomerCreated"], to: ["wms"] });
    await page.getByLabel("Rules document (JSON)").fill(JSON.stringify(document, null, 2));
    await Promise.all([page.waitForURL(/\/console\/rules$/), page.getByRole("button", { name: "Save…" }).click()]);
    await expect.poll(() => page.locator("h1").textContent()).toBe("Save the rules?");
    expect(await page.locator("main").textContent()).toContain("route customers is added");
    await review("rules-confirm");
    await Promise.all([
      page.waitForURL(/notice=rules_saved/),
      page.getByRole("button", { name: "Save the rules" }).click(),
    ]);
    expect(await page.getByRole("status").textContent()).toContain("The rules are saved.");
    const stored = (await (await relay.admin("/rules")).json()) as { routes: { name: string }[] };
    expect(stored.routes.map((r) => r.name)).toEqual(["orders", "products", "customers"]);
    await review("rules");
  });

  it("runs a dry run of a sample and shows it as tables", async () => {
    await page.goto(`${relay.url}/console/try`);
    await page.getByLabel("Sample call").selectOption("OrderCreated");
    await Promise.all([
      page.waitForURL(/sample=OrderCreated/),
      page.getByRole("button", { name: "Load the sample" }).click(),
    ]);
    expect(await page.getByLabel("Envelope (JSON)").inputValue()).toContain('"OrderCreated"');
    await Promise.all([page.waitForLoadState(), page.getByRole("button", { name: "Run the dry run" }).click()]);
    await expect
      .poll(() => page.getByRole("region", { name: "Deliveries that would be enqueued" }).textContent())
      .toContain("wms");
    expect(await page.getByRole("region", { name: "Notifications" }).textContent()).toMatch(
      /OrderCreated.*orders.*wms/,
    );
    await review("try");
  });

  /** axe at both widths, then the screenshots. */
  async function reviewBoth(name: string): Promise<void> {
    for (const width of [375, 1280]) {
      await page.setViewportSize({ width, height: width < 600 ? 812 : 900 });
      const violations = await seriousViolations(page);
      expect(violations, `${name} at ${width} px:\n${describeViolations(violations)}`).toEqual([]);
    }
    await screenshots(page, name);
  }

  it("walks the activity log: the changes above, newest first, each row on a page of its own", async () => {
    await page.goto(`${relay.url}/console/activity`);
    const table = page.getByRole("region", { name: "Activity" });
    const text = (await table.textContent()) ?? "";
    for (const action of ["rules.save", "destination.resume", "destination.pause", "dead_letter.replay", "sign_in"]) {
      expect(text).toContain(action);
    }
    expect(text.indexOf("rules.save")).toBeLessThan(text.indexOf("destination.pause"));
    await reviewBoth("activity");
    await page.getByLabel("Action").selectOption("destination.pause");
    await Promise.all([
      page.waitForURL(/action=destination\.pause/),
      page.getByRole("button", { name: "Show" }).click(),
    ]);
    await Promise.all([page.waitForURL(/\/console\/activity\/\d+$/), table.getByRole("link").first().click()]);
    expect(await page.locator("main").textContent()).toContain("admin-token");
    await reviewBoth("activity-row");
  });

  it("shows a viewer every page and no form it cannot use", async () => {
    await page.goto(`${relay.url}/console`);
    await Promise.all([page.waitForURL(/\/console\/login/), page.getByRole("button", { name: "Sign out" }).click()]);
    await page.getByLabel("Token").fill(VIEWER_TOKEN);
    await Promise.all([page.waitForURL(/\/console$/), page.getByRole("button", { name: "Sign in" }).click()]);
    expect(await page.locator("header").textContent()).toContain("viewer-token (viewer)");
    await reviewBoth("viewer-overview");
    for (const [path, name] of [
      ["/console/destinations", "viewer-destinations"],
      ["/console/rules", "viewer-rules"],
      [`/console/calls/${ids.order}`, "viewer-call"],
      ["/console/dead-letters", "viewer-dead-letters"],
    ] as const) {
      await page.goto(`${relay.url}${path}`);
      // The only form a viewer gets is its own sign-out (and the filters, which change nothing).
      const forms = await page
        .locator("form[method=post]")
        .evaluateAll((all) =>
          all.map((f) => (f as unknown as { getAttribute(n: string): string | null }).getAttribute("action")),
        );
      expect(forms, path).toEqual(["/console/logout"]);
      await reviewBoth(name);
    }
    expect(await page.locator("main").textContent()).not.toContain("Replay");
  });

  it("signs out: the session is gone and pages redirect to the sign-in form again", async () => {
    await page.goto(`${relay.url}/console`);
    await Promise.all([page.waitForURL(/\/console\/login/), page.getByRole("button", { name: "Sign out" }).click()]);
    expect(await page.getByRole("status").textContent()).toContain("You are signed out.");
    expect(await context.cookies()).toEqual([]);
    await page.goto(`${relay.url}/console/rules`);
    expect(new URL(page.url()).pathname).toBe("/console/login");
  });
});
