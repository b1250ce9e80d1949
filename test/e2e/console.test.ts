/**
 * The console in a real browser (Debian's Chromium through playwright-core) against `wrangler dev` and five
 * destinations (one fine, one answering 500, one 503 whose breaker opens, one 410, one unreachable), with more calls than a page of the
 * calls list holds: sign in (and a wrong token refused), page the calls, find a call by its order number and
 * read its trace, confirm a resend, a replay and a delete, edit the rules (an error shown by its path and
 * line, a save confirmed field by field, a save over someone else's answered on the page), a dry run, the
 * auto-refresh, sign out. Every page is checked at 375 and 1280 px with axe-core (no serious or critical
 * violation) and for its layout (no column off-screen, nothing past its card, no Tab stop that does not
 * scroll, room for a select's arrow) and wording, and saved as a screenshot at both widths in
 * test/e2e/screenshots/ (git-ignored).
 */

import { rmSync } from "node:fs";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CallTrace } from "../../src/ledger/views.ts";
import {
  CHROMIUM,
  contrastOf,
  describeViolations,
  HAS_CHROMIUM,
  jargonIn,
  launchChromium,
  layoutProblems,
  midWordBreaks,
  SCREENSHOTS,
  screenshots,
  seriousViolations,
  WIDTHS,
} from "./lib/browser.ts";
import { ok, type Receiver, startReceiver } from "./lib/receivers.ts";
import { ADMIN_TOKEN, envelope, freshId, type Relay, startRelay, VIEWER_TOKEN, waitFor } from "./lib/relay.ts";

if (!HAS_CHROMIUM) {
  console.warn(
    `Skipping the console's browser tests: ${CHROMIUM} is missing (apt-get install chromium; .ci/run installs it).`,
  );
}

const ORDER_NUMBER = "E2E-4711";
/** More calls than a page of the calls list (50) holds. */
const PAGER_CALLS = 60;
const ids = { order: freshId(), product: freshId(), multi: freshId(), pim: freshId() };
const WMS_PATH = "/extend-commerce/webhooks/warehouse-management/notifications?tenant=nordic-retail-group";
const WMS_CONTACT = "integration-oncall@warehouse-systems.example.com";

let relay: Relay;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const receivers: Record<string, Receiver> = {};
/** A loopback address nothing listens on: the unreachable receiver. */
let unreachable: string;

async function trace(id: string): Promise<CallTrace | undefined> {
  const response = await relay.admin(`/calls/${id}`);
  return response.status === 200 ? ((await response.json()) as CallTrace) : undefined;
}

const main = async () => (await page.locator("main").textContent()) ?? "";

/** Loads a page and waits for it (a click that navigates, or a form's POST). */
async function navigate(action: () => Promise<unknown>): Promise<void> {
  await Promise.all([page.waitForNavigation(), action()]);
}

/**
 * Checks the page at 375 and 1280 px: axe-core (no serious or critical violation), its layout (layoutProblems)
 * and its wording (no jargon); then saves its screenshots.
 */
async function review(name: string, { allow = [] }: { allow?: string[] } = {}): Promise<void> {
  const before = page.viewportSize();
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: width < 600 ? 812 : 900 });
    const violations = (await seriousViolations(page)).filter((v) => !allow.includes(v.id));
    expect(violations, `${name} at ${width} px:\n${describeViolations(violations)}`).toEqual([]);
    expect(await layoutProblems(page), `${name} at ${width} px`).toEqual([]);
  }
  expect(await jargonIn(page), name).toEqual([]);
  await screenshots(page, name);
  if (before !== null) await page.setViewportSize(before);
}

async function atWidth<T>(width: number, check: () => Promise<T>): Promise<T> {
  const before = page.viewportSize();
  await page.setViewportSize({ width, height: width < 600 ? 812 : 900 });
  try {
    return await check();
  } finally {
    if (before !== null) await page.setViewportSize(before);
  }
}

/** The id of the element that has the focus. */
const focusedId = () =>
  page.evaluate(
    () => (globalThis as unknown as { document: { activeElement: { id: string } } }).document.activeElement.id,
  );

/** The boxes of `selector` in the page, in document order. */
const boxes = (selector: string) =>
  page.locator(selector).evaluateAll((all) =>
    all.map((el) => {
      const r = (
        el as unknown as { getBoundingClientRect(): { top: number; left: number; right: number } }
      ).getBoundingClientRect();
      return { top: r.top + (globalThis as unknown as { scrollY: number }).scrollY, left: r.left, right: r.right };
    }),
  );

describe.skipIf(!HAS_CHROMIUM)(`the console in Chromium (${CHROMIUM})`, () => {
  beforeAll(async () => {
    // This run's screenshots only: `npm run gallery` copies what it finds there.
    rmSync(SCREENSHOTS, { recursive: true, force: true });
    receivers.wms = await startReceiver("wms", ok);
    receivers.shop = await startReceiver("shop", () => ({ status: 410 }));
    receivers.erp = await startReceiver("erp", () => ({ status: 500 }));
    // Fails always; its circuit breaker pauses it at the first failure, and its alerts go to a webhook.
    receivers.pim = await startReceiver("pim", () => ({ status: 503, headers: { "x-request-id": "pim-1" } }));
    receivers.hooks = await startReceiver("hooks", ok);
    const gone = await startReceiver("crm");
    unreachable = gone.url;
    await gone.stop();
    [relay, browser] = await Promise.all([
      startRelay({ vars: { RETRY_SCHEDULE: "1,1,1", RULES_CACHE_SECONDS: "0" } }),
      launchChromium(),
    ]);
    const put = await relay.admin("/rules", {
      method: "PUT",
      body: JSON.stringify({
        version: 1,
        destinations: {
          wms: { url: `${receivers.wms.url}${WMS_PATH}`, techContact: WMS_CONTACT },
          shop: { url: receivers.shop.url, maxAttempts: 3 },
          erp: { url: receivers.erp.url, maxAttempts: 2 },
          crm: { url: unreachable, maxAttempts: 2 },
          pim: {
            url: receivers.pim.url,
            circuit: { failures: 1, cooldownSeconds: 3600 },
            alertWebhook: receivers.hooks.url,
          },
        },
        routes: [
          { name: "orders", actions: ["OrderCreated"], to: ["wms"] },
          { name: "picking", actions: ["OrderPicked"], to: ["wms"] },
          { name: "products", actions: ["ProductCreated"], to: ["shop"] },
          { name: "customers", actions: ["CustomerCreated"], to: ["erp"] },
          { name: "invoices", actions: ["CustomerInvoiceCreated"], to: ["crm"] },
          { name: "offers", actions: ["OfferCreated"], to: ["wms"] },
          { name: "purchases", actions: ["PurchaseCreated"], to: ["erp"] },
          { name: "balances", actions: ["BalanceChanged"], to: ["wms"] },
          { name: "product-changes", actions: ["ProductChanged"], to: ["pim"] },
        ],
      }),
    });
    expect(put.status).toBe(200);
    const order = { Action: "OrderCreated", Details: { OrderNumber: ORDER_NUMBER, OrderType: "NormalOrder" } };
    const product = { Action: "ProductCreated", Details: { ProductNumber: "SKU-4711" } };
    // Six notifications for four destinations: each matches one route of nine, so 48 routes do not match.
    const multi = [
      { Action: "OrderCreated", Details: { OrderNumber: "E2E-6001", OrderType: "NormalOrder" } },
      { Action: "OrderPicked", Details: { OrderNumber: "E2E-6001", Warehouse: "YX" } },
      { Action: "ProductCreated", Details: { ProductNumber: "SKU-6001" } },
      { Action: "CustomerCreated", Details: { CustomerNumber: "C-6001" } },
      { Action: "CustomerInvoiceCreated", Details: { InvoiceNumber: "I-6001", CustomerNumber: "C-6001" } },
      { Action: "OfferCreated", Details: { OfferNumber: "O-6001" } },
    ];
    expect((await relay.send(envelope([order], ids.order))).status).toBe(202);
    expect((await relay.send(envelope([product], ids.product))).status).toBe(202);
    expect((await relay.send(envelope(multi, ids.multi))).status).toBe(202);
    const pim = [{ Action: "ProductChanged", Details: { ProductNumber: "SKU-7001" } }];
    expect((await relay.send(envelope(pim, ids.pim))).status).toBe(202);
    // Enough calls for the calls list to page, ten at a time.
    for (let i = 0; i < PAGER_CALLS; i += 10) {
      const sent = await Promise.all(
        Array.from({ length: 10 }, (_, j) =>
          relay.send(
            envelope([{ Action: "OrderCreated", Details: { OrderNumber: `E2E-P${i + j}`, OrderType: "NormalOrder" } }]),
          ),
        ),
      );
      expect(sent.map((r) => r.status)).toEqual(Array(10).fill(202));
    }
    await waitFor(
      "the order delivered, the product dead, the multi call settled, every call in the ledger",
      async () => {
        const [o, p, m] = await Promise.all([trace(ids.order), trace(ids.product), trace(ids.multi)]);
        const statuses = Object.fromEntries((m?.deliveries ?? []).map((d) => [d.destination, d.status]));
        const listed = (await (await relay.admin("/calls?limit=100")).json()) as { items: unknown[] };
        return o?.deliveries[0]?.status === "delivered" &&
          p?.deliveries[0]?.status === "dead" &&
          statuses.wms === "delivered" &&
          statuses.shop === "dead" &&
          statuses.erp === "dead" &&
          statuses.crm === "dead" &&
          listed.items.length >= PAGER_CALLS + 3
          ? true
          : undefined;
      },
    );
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
    expect(await focusedId()).toBe("sign-in-problem");
    await review("login-problem");
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
    expect(await main()).toContain("wms");
    await review("overview");
  });

  it("pages the calls list with a pager one can see; page 2's Newest leads to /console/calls", async () => {
    await page.goto(`${relay.url}/console/calls`);
    const pager = page.getByRole("navigation", { name: "Pages" });
    const next = pager.getByRole("link", { name: "Next page" });
    expect(await next.isVisible()).toBe(true);
    expect(await contrastOf(page, 'nav[aria-label="Pages"] a')).toBeGreaterThanOrEqual(4.5);
    await review("calls");
    await navigate(() => next.click());
    expect(new URL(page.url()).searchParams.has("cursor")).toBe(true);
    const newest = pager.getByRole("link", { name: "Newest" });
    expect(await newest.getAttribute("href")).toBe("/console/calls");
    expect(await contrastOf(page, 'nav[aria-label="Pages"] a')).toBeGreaterThanOrEqual(4.5);
    await review("calls-page-2");
  });

  it("finds a call by its order number and shows its trace", async () => {
    await page.goto(`${relay.url}/console/calls`);
    await page.getByLabel("Call Id or business key").fill(ORDER_NUMBER);
    await Promise.all([page.waitForURL(/q=E2E-4711/), page.getByRole("button", { name: "Search" }).click()]);
    expect(new URL(page.url()).search).toBe(`?q=${ORDER_NUMBER}`);
    await review("calls-search");
    await Promise.all([
      page.waitForURL(`**/console/calls/${ids.order}`),
      page.getByRole("link", { name: ids.order }).click(),
    ]);
    const text = await main();
    expect(text).toContain(ORDER_NUMBER);
    expect(text).toContain("products");
    expect(await page.locator("#delivery-wms").textContent()).toMatch(/wms\s*delivered/);
    expect(await page.locator("#delivery-wms table").textContent()).toContain("200");
    await review("call-one");
  });

  it("at 375 px shows records as cards, state and actions first, with no column off-screen", async () => {
    await atWidth(375, async () => {
      for (const path of [
        "/console",
        "/console/calls",
        "/console/dead-letters",
        `/console/calls/${ids.multi}`,
        "/console/activity",
        "/console/alerts",
        "/console/destinations/wms",
        "/console/jobs",
      ]) {
        await page.goto(`${relay.url}${path}`);
        expect(await layoutProblems(page), path).toEqual([]);
        // Every cell of every table is on the screen, without scrolling sideways.
        const offScreen = (await boxes("main td, main th")).filter((b) => b.left < 0 || b.right > 376);
        expect(offScreen, path).toEqual([]);
        // In each record, its state (a badge) and its actions come before the other facts.
        const rows = await page.locator("main table tbody tr").evaluateAll((all) =>
          all.map((tr) => {
            type Box = { top: number; height: number };
            const box = (el: unknown) => (el as { getBoundingClientRect(): Box }).getBoundingClientRect();
            const top = (el: unknown) => box(el).top;
            // An empty fact is not shown on a card (display: none): it has no place in the order.
            const cells = [
              ...(tr as unknown as { children: Iterable<{ tagName: string; querySelector(s: string): unknown }> })
                .children,
            ].filter((c) => c.tagName === "TD" && box(c).height > 0);
            // A state is a badge; an action a button, or a link to the page that asks before one.
            const lead = '.badge, button, a[href$="/replay"], a[href$="/delete"], a[href$="/resend"]';
            const first = cells.filter((c) => c.querySelector(lead) !== null).map(top);
            const others = cells.filter((c) => c.querySelector(lead) === null).map(top);
            return { first: Math.max(...first, -1), others: Math.min(...others, Number.POSITIVE_INFINITY) };
          }),
        );
        for (const row of rows) expect(row.first, path).toBeLessThanOrEqual(row.others);
      }
    });
    // Nor on a tablet, where the tables are tables again.
    await atWidth(768, async () => {
      for (const path of ["/console", "/console/calls", "/console/dead-letters", `/console/calls/${ids.multi}`]) {
        await page.goto(`${relay.url}${path}`);
        expect(await layoutProblems(page), `${path} at 768 px`).toEqual([]);
      }
    });
  });

  it("puts a call's deliveries (and Resend) before the routes that did not match", async () => {
    await page.goto(`${relay.url}/console/calls/${ids.multi}`);
    const headings = await page.locator("main h2").allTextContents();
    expect(headings.indexOf("Deliveries")).toBeGreaterThan(-1);
    expect(headings.indexOf("Deliveries")).toBeLessThan(
      headings.findIndex((h) => h.startsWith("Routes that did not match")),
    );
    const resend = await page
      .getByRole("link", { name: /^Resend to / })
      .first()
      .boundingBox();
    expect(resend?.y).toBeLessThan(1200);
    // The unreachable receiver's error, readably: not "network error: Error: …".
    const crm = (await page.locator("#delivery-crm").textContent()) ?? "";
    expect(crm).toMatch(/network error: [A-Z]/);
    expect(crm).not.toMatch(/Error: \w*Error|error: Error/);
    await review("call");
  });

  it("shows a delivery's request, masked, with copy as curl, and a failed attempt's answer", async () => {
    await page.goto(`${relay.url}/console/calls/${ids.multi}`);
    const erp = page.locator("#delivery-erp");
    await erp.locator("details.request > summary").click();
    await erp.locator("details.curl > summary").click();
    const curl = (await erp.locator("details.curl pre").textContent()) ?? "";
    expect(curl).toMatch(/^curl -X POST 'http:\/\/127\.0\.0\.1:\d+\/?' \\\n {2}-H 'Content-Type: application\/json'/);
    expect(curl).toContain(`-H 'X-Relay-Delivery-Id: ${ids.multi}.erp'`);
    expect(curl).toContain("--data-binary '{");
    // Selectable as text, no script needed: the command is a <pre>.
    expect(await erp.locator("details.curl pre").evaluate((el) => (el as unknown as { tagName: string }).tagName)).toBe(
      "PRE",
    );
    const answers = erp.locator("details.answer");
    expect(await answers.count()).toBe(2);
    await answers.first().locator("summary").click();
    expect(await answers.first().textContent()).toMatch(/Attempt 1: the receiver's answer \(HTTP 500\).*date: /is);
    await review("call-request");
  });

  it("asks before a resend, warns when the destination is paused, and shows its notice once", async () => {
    expect((await relay.admin("/destinations/wms/pause", { method: "POST" })).status).toBe(200);
    try {
      await page.goto(`${relay.url}/console/calls/${ids.order}`);
      await navigate(() => page.getByRole("link", { name: "Resend to wms" }).click());
      expect(new URL(page.url()).pathname).toBe(`/console/deliveries/${ids.order}.wms/resend`);
      expect(await page.locator("h1").textContent()).toBe("Resend to wms?");
      expect(await page.getByRole("alert").textContent()).toMatch(/wms is paused.*wait.*until it is resumed/s);
      expect(receivers.wms!.requests.filter((r) => r.deliveryId === `${ids.order}.wms`)).toHaveLength(1);
      await review("resend");
      await navigate(() => page.getByRole("button", { name: "Resend it" }).click());
      expect(new URL(page.url()).pathname).toBe(`/console/calls/${ids.order}`);
      expect(page.url()).not.toContain("notice");
      expect(await page.getByRole("status").textContent()).toContain("The delivery was sent again");
      await page.reload();
      expect(await page.getByRole("status").count()).toBe(0);
    } finally {
      expect((await relay.admin("/destinations/wms/resume", { method: "POST" })).status).toBe(200);
    }
    await waitFor("the resent delivery at the receiver", () =>
      receivers.wms!.requests.filter((r) => r.deliveryId === `${ids.order}.wms`).length === 2 ? true : undefined,
    );
  });

  it("asks before a replay (warning of a paused destination), a delete and a bulk replay", async () => {
    await page.goto(`${relay.url}/console/dead-letters`);
    const byDestination = page.getByRole("region", { name: "Dead letters by destination" });
    expect(await byDestination.textContent()).toMatch(/shop\s*2/);
    await review("dead-letters");

    expect((await relay.admin("/destinations/crm/pause", { method: "POST" })).status).toBe(200);
    try {
      await navigate(() => page.getByRole("link", { name: `Replay ${ids.multi}.crm` }).click());
      expect(new URL(page.url()).pathname).toBe(`/console/dead-letters/${ids.multi}.crm/replay`);
      expect(await page.getByRole("alert").textContent()).toMatch(/crm is paused.*wait.*until it is resumed/s);
      await review("dead-letter-replay");
      await navigate(() => page.getByRole("link", { name: "Cancel" }).click());
      expect(await main()).toContain(`${ids.multi}.crm`);
    } finally {
      expect((await relay.admin("/destinations/crm/resume", { method: "POST" })).status).toBe(200);
    }

    await navigate(() => page.getByRole("link", { name: `Delete ${ids.multi}.erp` }).click());
    expect(await page.locator("h1").textContent()).toBe("Delete this dead letter?");
    expect(await main()).toContain("cannot be undone");
    await review("dead-letter-delete");
    await navigate(() => page.getByRole("button", { name: "Delete it" }).click());
    expect(await page.getByRole("status").textContent()).toContain("The dead letter was deleted.");
    expect(await main()).not.toContain(`${ids.multi}.erp`);

    await navigate(() => page.getByRole("link", { name: /^Replay all \(\d+\)/ }).click());
    expect(await page.locator("h1").textContent()).toMatch(/^Replay all \d+ dead letters\?$/);
    await review("dead-letters-replay-all");
    await navigate(() => page.getByRole("link", { name: "Cancel" }).click());
    expect(new URL(page.url()).pathname).toBe("/console/dead-letters");
  });

  it("replays a dead letter once its receiver is fixed, and the count drops", async () => {
    await page.goto(`${relay.url}/console/dead-letters?destination=shop`);
    await navigate(() => page.getByRole("link", { name: `${ids.product}.shop`, exact: true }).click());
    expect(await main()).toContain("permanent_failure");
    await review("dead-letter");
    receivers.shop!.behave(ok);
    await navigate(() => page.getByRole("link", { name: `Replay ${ids.product}.shop` }).click());
    expect(await page.getByRole("alert").count()).toBe(0);
    await navigate(() => page.getByRole("button", { name: "Replay it" }).click());
    expect(await page.getByRole("status").textContent()).toContain("The dead letter was sent again");
    expect(await page.getByRole("region", { name: "Dead letters by destination" }).textContent()).toMatch(/shop\s*1/);
    await waitFor("the fixed receiver to get the replay", () =>
      receivers.shop!.delivered().length === 1 ? true : undefined,
    );
    await waitFor("the ledger to show the delivery delivered", async () =>
      (await trace(ids.product))?.deliveries[0]?.status === "delivered" ? true : undefined,
    );
  });

  it("replays a destination's dead letters in bulk, asking first, and follows the job until it is done", async () => {
    await page.goto(`${relay.url}/console/dead-letters?destination=shop`);
    await navigate(() => page.getByRole("link", { name: "Replay all matching…" }).click());
    expect(await page.locator("h1").textContent()).toBe("Replay deliveries in bulk");
    expect(await page.locator("main h2").first().textContent()).toBe("1 delivery matches");
    expect(await main()).toContain("Filter: destination shop, status dead.");
    await review("bulk-replay");
    await navigate(() => page.getByRole("button", { name: "Replay it" }).click());
    expect(new URL(page.url()).pathname).toMatch(/^\/console\/jobs\/\d+$/);
    expect(await page.getByRole("status").textContent()).toContain("The bulk replay started on 1 delivery");
    // While it runs the page reloads itself (a Refresh header), without script.
    await expect.poll(() => main(), { timeout: 30_000 }).toMatch(/done\s*Done\./);
    expect(await page.locator("main").textContent()).toMatch(/Replayed\s*1/);
    await review("job");
    await navigate(() => page.getByRole("link", { name: "Bulk actions so far" }).click());
    expect(await page.getByRole("region", { name: "Bulk actions" }).textContent()).toMatch(/Bulk replay \d+\s*done/);
    await review("jobs");
    await waitFor("the replayed dead letter at the fixed receiver", () =>
      receivers.shop!.delivered().some((r) => r.deliveryId === `${ids.multi}.shop`) ? true : undefined,
    );
    await page.goto(`${relay.url}/console/deliveries/bulk/delete?destination=crm`);
    expect(await page.getByRole("button", { name: "Delete it" }).count()).toBe(1);
    await review("bulk-delete");
  });

  it("shows the destinations within their cards, URLs and addresses wrapped at their punctuation", async () => {
    await page.goto(`${relay.url}/console/destinations`);
    expect(await main()).toContain(receivers.wms!.url);
    for (const width of WIDTHS) {
      await atWidth(width, async () => {
        expect(await layoutProblems(page), `at ${width} px`).toEqual([]);
        const wms = '#destination-wms dd:has-text("extend-commerce"), #destination-wms dd:has-text("@")';
        expect(await page.locator(wms).count()).toBe(2);
        expect(await midWordBreaks(page, wms), `at ${width} px`).toEqual([]);
      });
    }
    // The unreachable one's last failure, readably.
    expect(await page.locator("#destination-crm").textContent()).toMatch(/network error: [A-Z]/);
    await review("destinations");
    await navigate(() => page.getByRole("button", { name: "Pause wms" }).click());
    expect(await page.locator("#destination-wms").textContent()).toContain("paused by hand");
    expect(await page.getByRole("status").textContent()).toContain("Paused: its deliveries are held");
    await review("destinations-paused");
    await navigate(() => page.getByRole("button", { name: "Resume wms" }).click());
    expect(await page.locator("#destination-wms").textContent()).toContain("active");
  });

  it("draws each destination's deliveries per hour, 24 hours or 7 days, on the overview and its own page", async () => {
    await page.goto(`${relay.url}/console`);
    expect(await page.getByRole("img", { name: /^wms, last 24 hours/ }).count()).toBe(1);
    expect(await page.locator("figure.chart svg[role=img]").count()).toBe(5);
    await navigate(() =>
      page.getByRole("navigation", { name: "Time range" }).getByRole("link", { name: "Last 7 days" }).click(),
    );
    expect(new URL(page.url()).searchParams.get("range")).toBe("7d");
    expect(await page.getByRole("img", { name: /^wms, last 7 days/ }).count()).toBe(1);
    await review("overview-7d");
    await navigate(() => page.locator("#chart-0-h").getByRole("link").click());
    expect(new URL(page.url()).pathname).toBe("/console/destinations/wms");
    expect(await page.locator("h1").textContent()).toBe("Destination wms");
    // The figures for screen readers, folded: a row per hour.
    await page.getByText("wms, last 24 hours: the figures").click();
    expect(await page.locator("figure.chart tbody tr").count()).toBe(24);
    expect(await page.locator("figure.chart tbody").textContent()).toMatch(/[1-9]/);
    for (const width of WIDTHS) {
      await atWidth(width, async () => {
        // The picture scales to the width, and its labels stay inside it.
        const [svg] = await boxes("figure.chart > svg");
        const labels = await boxes("figure.chart > svg text");
        expect(svg!.right, `at ${width} px`).toBeLessThanOrEqual(width);
        expect(
          labels.filter((l) => l.left < svg!.left - 1 || l.right > svg!.right + 1),
          `at ${width} px`,
        ).toEqual([]);
      });
    }
    await review("destination");
    await navigate(() => page.getByRole("link", { name: "Last 7 days" }).click());
    expect(await page.getByRole("img", { name: /^wms, last 7 days/ }).count()).toBe(1);
    await review("destination-7d");
  });

  it("shows what was alerted, and probes a destination its circuit breaker paused, asking first", async () => {
    await waitFor("pim paused by its circuit breaker", async () => {
      const state = (await (await relay.admin("/destinations/pim")).json()) as { state: string; pausedBy?: string };
      return state.state === "paused" && state.pausedBy === "circuit" ? true : undefined;
    });
    await expect
      .poll(
        async () => {
          await page.goto(`${relay.url}/console/alerts`);
          return page.getByRole("region", { name: "Alerts sent" }).count();
        },
        { timeout: 20_000 },
      )
      .toBe(1);
    expect(await page.getByRole("region", { name: "Destinations now" }).textContent()).toMatch(
      /pim\s*paused by the circuit breaker\s*Open since/,
    );
    expect(await page.getByRole("region", { name: "Alerts sent" }).textContent()).toMatch(
      /destination_paused\s*pim\s*its alert webhook\s*alertWebhook \(127\.0\.0\.1:\d+\)\s*sent/,
    );
    await review("alerts");
    await navigate(() => page.getByRole("link", { name: "Probe now: pim" }).click());
    expect(await page.locator("h1").textContent()).toBe("Probe pim now?");
    await review("probe");
    const before = receivers.pim!.requests.length;
    await navigate(() => page.getByRole("button", { name: "Probe it now" }).click());
    expect(new URL(page.url()).pathname).toBe("/console/destinations/pim");
    expect(await page.getByRole("status").textContent()).toContain("The probe is on its way");
    await waitFor("the probe at the receiver", () => (receivers.pim!.requests.length > before ? true : undefined));
    await review("destination-probed");
  });

  it("shows a rules error with its line quoted, lists a save's changes field by field, then saves", async () => {
    await page.goto(`${relay.url}/console/rules`);
    const editor = page.getByLabel("Rules document (JSON)");
    const document = JSON.parse(await editor.inputValue()) as {
      destinations: Record<string, { maxAttempts?: number }>;
      routes: { name: string; actions: string[]; to: string[] }[];
    };
    document.routes[0]!.to = ["nowhere"];
    await editor.fill(JSON.stringify(document, null, 2));
    await navigate(() => page.getByRole("button", { name: "Check" }).click());
    const issues = (await page.locator("#document-issues").textContent()) ?? "";
    expect(issues).toMatch(/routes\[0\]\.to\[0\] \(line \d+\): unknown destination "nowhere"/);
    // The editor has no line numbers: the summary quotes the line, numbered, and has the focus.
    const line = /\(line (\d+)\)/.exec(issues)![1]!;
    expect(issues).toMatch(new RegExp(`${Number(line) - 1}\\D*"to": \\[`));
    expect(await focusedId()).toBe("document-issues");
    await review("rules-issue");
    document.routes[0]!.to = ["wms"];
    document.routes.push({ name: "archive", actions: ["PurchaseCreated"], to: ["wms"] });
    document.destinations.shop!.maxAttempts = 4;
    await page.getByLabel("Rules document (JSON)").fill(JSON.stringify(document, null, 2));
    await navigate(() => page.getByRole("button", { name: "Save…" }).click());
    expect(await page.locator("h1").textContent()).toBe("Save the rules?");
    const changes = await main();
    expect(changes).toContain("route archive is added");
    expect(changes).toContain("destination shop: maxAttempts 3 → 4");
    await review("rules-confirm");
    await navigate(() => page.getByRole("button", { name: "Save the rules" }).click());
    expect(await page.getByRole("status").textContent()).toContain("The rules are saved");
    const stored = (await (await relay.admin("/rules")).json()) as { routes: { name: string }[] };
    expect(stored.routes.map((r) => r.name)).toContain("archive");
    await review("rules");
  });

  it("answers a save over someone else's newer one on the page: who, what they changed, and the way on", async () => {
    await page.goto(`${relay.url}/console/rules`);
    const mine = JSON.parse(await page.getByLabel("Rules document (JSON)").inputValue()) as {
      routes: { name: string; actions: string[]; to: string[] }[];
    };
    // Meanwhile someone saves through the admin API.
    const theirs = structuredClone(mine);
    theirs.routes.push({ name: "late-night", actions: ["PurchaseCreated"], to: ["erp"] });
    expect((await relay.admin("/rules", { method: "PUT", body: JSON.stringify(theirs) })).status).toBe(200);
    mine.routes = mine.routes.filter((r) => r.name !== "archive");
    await page.getByLabel("Rules document (JSON)").fill(JSON.stringify(mine, null, 2));
    const [answer] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === "POST"),
      page.getByRole("button", { name: "Save…" }).click(),
    ]);
    await page.waitForLoadState();
    expect(answer.status()).toBe(409);
    const text = await main();
    expect(text).toContain("admin-token");
    expect(text).toContain('"late-night"');
    expect(text).not.toContain("another tab");
    await review("rules-conflict");
    // Saving again now asks, saying what it undoes.
    await navigate(() => page.getByRole("button", { name: "Save…" }).click());
    expect(await page.locator("h1").textContent()).toBe("Save the rules?");
    expect(await main()).toContain("route late-night is removed");
  });

  it("shows a dry run's error above the envelope, in view and focused, at 375 px", async () => {
    await atWidth(375, async () => {
      await page.goto(`${relay.url}/console/try`);
      await page.getByLabel("Envelope (JSON)").fill('{"Id": "abc", "Notifications": [');
      await navigate(() => page.getByRole("button", { name: "Run the dry run" }).click());
      const problem = page.getByRole("alert");
      expect(await problem.textContent()).toMatch(/JSON/);
      expect(await focusedId()).toBe("envelope-problem");
      const [box] = await boxes("#envelope-problem");
      const [field] = await boxes("#envelope");
      expect(box!.top).toBeLessThan(field!.top);
      const scrolled = await page.evaluate(() => (globalThis as unknown as { scrollY: number }).scrollY);
      expect(box!.top - scrolled).toBeGreaterThanOrEqual(0);
      expect(box!.top - scrolled).toBeLessThan(812);
    });
    await review("try-problem");
  });

  it("runs a dry run of a sample and shows it as tables", async () => {
    await page.goto(`${relay.url}/console/try`);
    await page.getByLabel("Sample call").selectOption("OrderCreated");
    await Promise.all([
      page.waitForURL(/sample=OrderCreated/),
      page.getByRole("button", { name: "Load the sample" }).click(),
    ]);
    expect(await page.getByLabel("Envelope (JSON)").inputValue()).toContain('"OrderCreated"');
    await navigate(() => page.getByRole("button", { name: "Run the dry run" }).click());
    await expect
      .poll(() => page.getByRole("region", { name: "Deliveries that would be enqueued" }).textContent())
      .toContain("wms");
    expect(await page.getByRole("region", { name: "Notifications" }).textContent()).toMatch(
      /OrderCreated.*orders.*wms/,
    );
    await review("try");
  });

  it("refreshes the overview and the calls list only when asked, without script", async () => {
    const refresh = () => page.locator('meta[http-equiv="refresh"]').getAttribute("content");
    for (const path of ["/console", "/console/calls?status=delivered"]) {
      await page.goto(`${relay.url}${path}`);
      expect(await page.locator('meta[http-equiv="refresh"]').count(), path).toBe(0);
      await navigate(() => page.getByRole("link", { name: "Refresh every 30 seconds" }).click());
      expect(new URL(page.url()).searchParams.get("refresh"), path).toBe("30");
      expect(await refresh(), path).toBe("30");
      if (path.includes("status")) expect(new URL(page.url()).searchParams.get("status")).toBe("delivered");
      // axe calls any timed refresh a failure (WCAG 2.2.1), as it cannot know that the person asked for this one
      // and has a link that stops it; that rule alone is let pass here, and only on a page refreshing on request.
      await review(path === "/console" ? "overview-refresh" : "calls-refresh", { allow: ["meta-refresh"] });
      await navigate(() => page.getByRole("link", { name: "Stop refreshing" }).click());
      expect(new URL(page.url()).searchParams.has("refresh"), path).toBe(false);
      expect(await page.locator('meta[http-equiv="refresh"]').count(), path).toBe(0);
    }
  });

  it("walks the activity log: the changes above, newest first, each row on a page of its own", async () => {
    await page.goto(`${relay.url}/console/activity`);
    const table = page.getByRole("region", { name: "Activity" });
    const text = (await table.textContent()) ?? "";
    for (const action of ["rules.save", "destination.resume", "destination.pause", "dead_letter.replay", "sign_in"]) {
      expect(text).toContain(action);
    }
    expect(text.indexOf("rules.save")).toBeLessThan(text.indexOf("destination.pause"));
    await review("activity");
    await page.getByLabel("Action").selectOption("destination.pause");
    await Promise.all([
      page.waitForURL(/action=destination\.pause/),
      page.getByRole("button", { name: "Show" }).click(),
    ]);
    await Promise.all([page.waitForURL(/\/console\/activity\/\d+$/), table.getByRole("link").first().click()]);
    expect(await main()).toContain("admin-token");
    await review("activity-row");
  });

  it("reviews the remaining pages: a rules version, its restore, a 404", async () => {
    await page.goto(`${relay.url}/console/rules/versions/1`);
    await review("rules-version");
    await navigate(() => page.getByRole("button", { name: "Restore version 1…" }).click());
    expect(await page.locator("h1").textContent()).toBe("Restore version 1?");
    await review("rules-restore");
    await page.goto(`${relay.url}/console/nothing-here`);
    await review("not-found");
  });

  it("shows a viewer every page and no form it cannot use", async () => {
    await page.goto(`${relay.url}/console`);
    await Promise.all([page.waitForURL(/\/console\/login/), page.getByRole("button", { name: "Sign out" }).click()]);
    await page.getByLabel("Token").fill(VIEWER_TOKEN);
    await Promise.all([page.waitForURL(/\/console$/), page.getByRole("button", { name: "Sign in" }).click()]);
    expect(await page.locator("header").textContent()).toContain("viewer-token (viewer)");
    await review("viewer-overview");
    for (const [path, name] of [
      ["/console/destinations", "viewer-destinations"],
      ["/console/rules", "viewer-rules"],
      [`/console/calls/${ids.order}`, "viewer-call"],
      ["/console/dead-letters", "viewer-dead-letters"],
      [`/console/dead-letters/${ids.multi}.crm/replay`, "viewer-replay"],
      ["/console/alerts", "viewer-alerts"],
      ["/console/destinations/pim", "viewer-destination"],
      ["/console/destinations/pim/probe", "viewer-probe"],
      ["/console/deliveries/bulk/replay?destination=crm&status=dead", "viewer-bulk-replay"],
      ["/console/jobs", "viewer-jobs"],
    ] as const) {
      await page.goto(`${relay.url}${path}`);
      // The only form a viewer gets is its own sign-out (and the filters, which change nothing).
      const forms = await page
        .locator("form[method=post]")
        .evaluateAll((all) =>
          all.map((f) => (f as unknown as { getAttribute(n: string): string | null }).getAttribute("action")),
        );
      expect(forms, path).toEqual(["/console/logout"]);
      await review(name);
    }
    await page.goto(`${relay.url}/console/dead-letters`);
    expect(await main()).not.toContain("Replay");
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
