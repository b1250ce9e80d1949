import { env } from "cloudflare:workers";
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { resetGateCache } from "../../src/gate/client.ts";
import { listActivity } from "../../src/ledger/activity.ts";
import { insertAlertsSent } from "../../src/ledger/alerts.ts";
import { getCall } from "../../src/ledger/calls.ts";
import { getDeadLetter } from "../../src/ledger/dead-letters.ts";
import { getJob } from "../../src/ledger/jobs.ts";
import { QUEUES } from "../../src/queues/names.ts";
import {
  consume,
  storedDeadLetters as deadLetters,
  deliveryMessage,
  EXAMPLE_RULES,
  eventually,
  FIXTURES,
  freshId,
  putRules,
  signedPost,
  VIEWER_TOKEN,
} from "../helpers.ts";
import { expectRedirect, noticeCookieOf, page, postForm, signIn, textOf } from "./helpers.ts";

/**
 * The console as an operator's tool: a destination's page with its pictures (docs/console.md, "Pictures") and
 * probe now, the alerts page (docs/alerts.md, "The alerts page"), a delivery's requests and a failed attempt's
 * answer on a call's page (docs/console.md, "A delivery's requests"), and bulk actions with their jobs
 * (docs/console.md, "Bulk actions").
 */

let operator: string;
let viewer: string;
let orderId: string;

/** The forms of a page that POST, but the sign-out. */
const changeForms = (html: string) =>
  [...html.matchAll(/<form[^>]*method="post"[^>]*action="([^"]+)"/g)]
    .map((m) => m[1])
    .filter((a) => a !== "/console/logout");

const get = async (path: string, cookie = operator, status = 200) => {
  const response = await page(path, cookie);
  expect(response.status, path).toBe(status);
  return response.text();
};

beforeAll(async () => {
  await putRules(EXAMPLE_RULES);
  // wms answers 500 (with headers and a body), shop takes it.
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    if (new URL(request.url).hostname === "wms.test") {
      return new Response('{"error":"<b>no stock</b>"}', { status: 500, headers: { "x-request-id": "r-4711" } });
    }
    return new Response("ok");
  });
  orderId = freshId();
  const body = FIXTURES["OrderCreated.json"]!.replace(/"Id":"[0-9a-f]+"/, `"Id":"${orderId}"`);
  expect((await signedPost(body)).status).toBe(202);
  await eventually(async () => {
    const trace = await getCall(env.LEDGER, orderId);
    expect(trace?.deliveries.find((d) => d.destination === "shop")?.status).toBe("delivered");
    expect(trace?.deliveries.find((d) => d.destination === "wms")?.attempts?.length).toBeGreaterThan(0);
  }, 25_000);
  vi.restoreAllMocks();
  [operator, viewer] = await Promise.all([signIn(), signIn(VIEWER_TOKEN)]);
}, 60_000);
beforeEach(async () => {
  resetGateCache();
  await putRules(EXAMPLE_RULES);
});
afterEach(() => vi.restoreAllMocks());

describe("pictures", () => {
  it("the overview draws each destination's deliveries per hour, 24 hours or 7 days, each with its figures", async () => {
    const day = await get("/console");
    expect(day.match(/<svg viewBox="0 0 480 220"[^>]*role="img"/g)).toHaveLength(2);
    expect(day).toContain('<title id="chart-0-title">wms, last 24 hours</title>');
    expect(day).toContain('href="/console?range=7d#pictures">Last 7 days');
    expect(day).toContain('aria-current="true">Last 24 hours');
    // The figures, for screen readers: 24 hours, the current one with the attempts made just now.
    const shop = day.slice(day.indexOf("shop, last 24 hours: the figures"));
    expect(shop.slice(0, shop.indexOf("</table>")).match(/<tr>/g)).toHaveLength(25);
    expect(textOf(shop)).toMatch(/\d\d:00 1 0 0 \d+/);
    const week = await get("/console?range=7d&refresh=30");
    expect(week).toContain("wms, last 7 days");
    // The other parameters are kept by the range's links (and the refresh's by the range).
    expect(week).toContain('href="/console?refresh=30#pictures">Last 24 hours');
    expect(week).toContain('href="/console?range=7d">Stop refreshing');
    expect(textOf(await get("/console?range=1y", operator, 400))).toContain("Parameter: range");
  });
});

describe("a destination's page", () => {
  it("shows its state, settings, pictures, alerts and actions; the list and the overview link to it", async () => {
    const html = await get("/console/destinations/shop");
    const shown = textOf(html);
    expect(shown).toContain("Destination shop active");
    expect(shown).toContain("Held none In flight 0 Failed in a row 0");
    expect(shown).toContain("Headers X-Api-Key: secret SHOP_API_KEY; X-Source: extend");
    expect(shown).toContain("Tech contact none");
    expect(html).toContain('<title id="chart-24h-title">shop, last 24 hours</title>');
    expect(shown).toContain("Latest alerts None open");
    expect(changeForms(html)).toEqual(["/console/destinations/shop/pause"]);
    expect(html).toContain('href="/console/deliveries/bulk/replay?destination=shop&amp;status=dead"');
    expect(html).not.toContain("/probe");
    expect(await get("/console/destinations/shop?range=7d")).toContain("shop, last 7 days");
    expect(await get("/console/destinations")).toContain('<a href="/console/destinations/shop">shop</a>');
    expect(await get("/console")).toContain('<a href="/console/destinations/shop">shop</a>');
    // The alerts' links to the list's cards still lead somewhere.
    expect(await get("/console/destinations")).toContain('id="destination-shop"');
    expect(textOf(await get("/console/destinations/nowhere", operator, 404))).toContain(
      'The rules have no destination "nowhere".',
    );
  });

  it("pauses and resumes from its page, back to it", async () => {
    const paused = await postForm("/console/destinations/shop/pause", operator, { back: "page" });
    expectRedirect(paused, "/console/destinations/shop");
    const shown = textOf(await get("/console/destinations/shop", `${operator}; ${noticeCookieOf(paused)}`));
    expect(shown).toContain("Paused: its deliveries are held");
    expect(shown).toContain("paused by hand All destinations · Its calls · Its dead letters Paused since");
    expect(shown).toContain("Latest alerts Open since");
    expectRedirect(
      await postForm("/console/destinations/shop/resume", operator, { back: "page" }),
      "/console/destinations/shop",
    );
  });

  it("shows a viewer no form, and the state and pictures", async () => {
    const html = await get("/console/destinations/wms", viewer);
    expect(changeForms(html)).toEqual([]);
    expect(html).not.toContain("/console/deliveries/bulk");
    expect(html).toContain('role="img"');
  });
});

describe("probe now", () => {
  it("asks, probes a destination its circuit breaker paused, is on record, and refuses any other", async () => {
    const name = `cb${Date.now().toString(36)}`;
    const url = `https://${name}.test/`;
    await putRules({
      ...EXAMPLE_RULES,
      destinations: {
        ...EXAMPLE_RULES.destinations,
        [name]: { url, maxAttempts: 10, circuit: { failures: 1, cooldownSeconds: 3600 } },
      },
    });
    let failed = false;
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      const request = new Request(input, init);
      if (request.url === url && !failed) {
        failed = true;
        return new Response("down", { status: 503 });
      }
      return new Response("ok");
    });
    await consume(QUEUES.deliveries, [deliveryMessage(name)]);
    await consume(QUEUES.deliveries, [deliveryMessage(name)]);

    const pageHtml = await get(`/console/destinations/${name}`);
    expect(textOf(pageHtml)).toContain(`Destination ${name} paused by the circuit breaker`);
    expect(pageHtml).toContain(`href="/console/destinations/${name}/probe"`);
    const alerts = await get("/console/alerts");
    expect(alerts).toContain(`href="/console/destinations/${name}/probe"`);
    expect(textOf(alerts)).toMatch(new RegExp(`${name} paused by the circuit breaker Open since`));
    // A viewer sees the state, but neither the link nor the form.
    expect(await get("/console/alerts", viewer)).not.toContain('/probe"');
    const asked = await get(`/console/destinations/${name}/probe`, viewer);
    expect(textOf(asked)).toContain("Only an operator can do this");
    expect(changeForms(asked)).toEqual([]);
    expect((await postForm(`/console/destinations/${name}/probe`, viewer)).status).toBe(403);

    const confirm = await get(`/console/destinations/${name}/probe`);
    expect(textOf(confirm)).toContain(`Probe ${name} now?`);
    expect(changeForms(confirm)).toEqual([`/console/destinations/${name}/probe`]);
    const probed = await postForm(`/console/destinations/${name}/probe`, operator);
    expectRedirect(probed, `/console/destinations/${name}`);
    expect(noticeCookieOf(probed)).toBe("__Host-console_notice=probed.0.0");
    const rows = await listActivity(env.LEDGER, { action: "destination.probe", limit: 10 });
    expect(rows.items.map((r) => [r.actor, r.target, r.outcome])).toEqual([
      ["admin-token", name, "ok"],
      ["viewer-token", name, "forbidden"],
    ]);
    await eventually(async () =>
      expect(textOf(await get(`/console/destinations/${name}`))).toContain(`${name} active`),
    );

    expect(textOf(await get(`/console/destinations/${name}/probe`, operator, 409))).toContain(
      `${name} is not paused by its circuit breaker`,
    );
    expect((await postForm(`/console/destinations/${name}/probe`, operator)).status).toBe(409);
  }, 30_000);
});

describe("the alerts page", () => {
  it("says per destination whether an episode is open, and lists what was sent to whom, escaped", async () => {
    const at = Date.now();
    const alert = (type: string, destination: string, extra: Record<string, string> = {}) => ({
      alert: `${destination}:${type}:${at}`,
      type: type as "destination_failing",
      destination,
      channel: "email" as const,
      recipient: "ops@example.com",
      outcome: "sent" as const,
      subject: `extend-relay: ${destination} ${type}`,
      text: `About ${destination}: <script>alert(1)</script>`,
      ...extra,
    });
    await insertAlertsSent(
      env.LEDGER,
      [alert("destination_failing", "shop"), alert("destination_failing", "wms")],
      at - 60_000,
    );
    await insertAlertsSent(
      env.LEDGER,
      [
        alert("destination_recovered", "shop"),
        {
          ...alert("destination_paused", "wms"),
          channel: "webhook",
          recipient: "ALERT_WEBHOOK",
          outcome: "failed",
          error: "HTTP 500",
        },
      ],
      at,
    );
    const html = await get("/console/alerts");
    expect(html).toContain('aria-current="page">Alerts');
    expect(html).not.toContain("<script>alert(1)</script>");
    expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    const shown = textOf(html);
    expect(shown).toMatch(/wms active Open since [\d-]+ [\d:]+Z \(last alert: paused\)/);
    expect(shown).toMatch(/shop active None open; recovered [\d-]+ [\d:]+Z/);
    expect(shown).toMatch(
      /destination_paused wms ALERT_WEBHOOK ALERT_WEBHOOK failed HTTP 500 extend-relay: wms destination_paused/,
    );
    expect(shown).toMatch(/destination_failing shop email ops@example.com sent/);
    const wms = textOf(await get("/console/alerts?destination=wms"));
    expect(wms).toContain("Sent about wms");
    expect(wms).not.toContain("destination_recovered");
    // The destination's page has its latest alerts too.
    expect(textOf(await get("/console/destinations/wms"))).toMatch(/Latest alerts Open since .* destination_paused/);
  });
});

describe("a call's page", () => {
  it("shows the request each delivery sends, secrets and signatures masked, and as curl", async () => {
    const html = await get(`/console/calls/${orderId}`);
    const shown = textOf(html);
    expect(shown).toContain("The request it sends (attempt 1) Secrets show by their names");
    expect(shown).toContain("URL https://shop.test/hooks Headers Content-Type: application/json");
    expect(shown).toContain("X-Api-Key: [secret SHOP_API_KEY]");
    expect(shown).toContain("webhook-signature: [signature]");
    expect(shown).toContain("ms-signature: [signature]");
    expect(shown).toContain("Copy as curl curl -X POST 'https://shop.test/hooks'");
    for (const secret of [env.SHOP_API_KEY, env.SHOP_SECRET, env.WMS_SECRET] as string[]) {
      expect(html).not.toContain(secret);
    }
  });

  it("shows a failed attempt's answer: its headers and the start of its body, escaped", async () => {
    const html = await get(`/console/calls/${orderId}`);
    expect(textOf(html)).toMatch(/Attempt 1: the receiver's answer \(HTTP 500\) .*x-request-id: r-4711/);
    expect(html).toContain("{&quot;error&quot;:&quot;&lt;b&gt;no stock&lt;/b&gt;&quot;}");
  });

  it("says why it cannot show a request: a secret not set", async () => {
    await putRules({
      ...EXAMPLE_RULES,
      destinations: { ...EXAMPLE_RULES.destinations, wms: { url: { secret: "NOT_SET_ANYWHERE" } } },
    });
    expect(textOf(await get(`/console/calls/${orderId}`))).toContain(
      "It cannot be sent as the rules and secrets stand: The Worker secret NOT_SET_ANYWHERE (url) is not set.",
    );
  });
});

describe("bulk actions", () => {
  it("count what a filter matches, ask, start a job on record, and follow it on its page", async () => {
    vi.spyOn(globalThis, "fetch").mockImplementation(async () => new Response("ok"));
    const wms = await deadLetters("wms", 3);
    await deadLetters("shop", 1);
    const list = await get("/console/dead-letters?destination=wms");
    expect(list).toContain('href="/console/deliveries/bulk/replay?destination=wms&amp;status=dead"');
    expect(list).toContain('href="/console/deliveries/bulk/delete?destination=wms&amp;status=dead"');
    expect(await get("/console/dead-letters?destination=wms", viewer)).not.toContain("/console/deliveries/bulk");

    const asked = await get("/console/deliveries/bulk/replay?destination=wms&status=dead");
    expect(textOf(asked)).toContain("3 deliveries match Filter: destination wms, status dead.");
    expect(textOf(asked)).toContain("Replay all 3 Cancel");
    expect(changeForms(asked)).toEqual(["/console/deliveries/bulk/replay"]);
    const forViewer = await get("/console/deliveries/bulk/replay?destination=wms&status=dead", viewer);
    expect(textOf(forViewer)).toContain("Only an operator can do this");
    expect(changeForms(forViewer)).toEqual([]);
    expect(
      (await postForm("/console/deliveries/bulk/replay", viewer, { destination: "wms", status: "dead" })).status,
    ).toBe(403);

    const started = await postForm("/console/deliveries/bulk/replay", operator, { destination: "wms", status: "dead" });
    expectRedirect(started, /^\/console\/jobs\/\d+$/);
    const id = Number(started.headers.get("location")!.split("/").pop());
    expect(noticeCookieOf(started)).toBe("__Host-console_notice=job_replay.3.0");
    const rows = await listActivity(env.LEDGER, { action: "deliveries.bulk_replay", limit: 5 });
    expect(rows.items.map((r) => [r.actor, r.outcome])).toEqual([
      ["admin-token", "ok"],
      ["viewer-token", "forbidden"],
    ]);
    await eventually(async () => expect((await getJob(env.LEDGER, id))?.state).toBe("done"), 30_000);
    const done = await page(`/console/jobs/${id}`, operator);
    expect(done.headers.get("refresh")).toBeNull();
    const shown = textOf(await done.text());
    expect(shown).toContain(`Bulk replay ${id} done Done.`);
    expect(shown).toContain("Replayed 3 Passed over 0");
    expect(shown).toContain(`Started by admin-token activity #${rows.items[0]!.id}`);
    for (const deliveryId of wms) expect(await getDeadLetter(env.LEDGER, env.PAYLOADS, deliveryId)).toBeNull();
    expect(textOf(await get("/console/jobs", viewer))).toContain(
      `Bulk replay ${id} done destination wms, status dead 3 replayed`,
    );
  }, 40_000);

  it("reload a running job's page with a Refresh header, and delete only dead letters", async () => {
    const erp = await deadLetters("erp", 2);
    // The job's queue takes the message but nothing runs it: the job stays running.
    const send = vi.spyOn(env.JOBS, "send").mockResolvedValue(undefined as never);
    expect(textOf(await get("/console/deliveries/bulk/delete?destination=erp&status=retrying"))).toContain(
      "Only dead letters can be deleted in bulk",
    );
    const asked = await get("/console/deliveries/bulk/delete?destination=erp");
    expect(textOf(asked)).toContain("2 dead letters match Filter: destination erp, status dead.");
    expect(asked).toContain('<input type="hidden" name="status" value="dead"/>');
    const started = await postForm("/console/deliveries/bulk/delete", operator, {
      destination: "erp",
      status: "dead",
    });
    expectRedirect(started, /^\/console\/jobs\/\d+$/);
    expect(send).toHaveBeenCalledOnce();
    const running = await page(started.headers.get("location")!, operator);
    expect(running.headers.get("refresh")).toBe("5");
    const html = await running.text();
    expect(html).not.toContain("http-equiv");
    expect(textOf(html)).toContain("running This page reloads itself every 5 seconds until the job ends.");
    expect((await listActivity(env.LEDGER, { action: "dead_letters.bulk_delete", limit: 5 })).items).toHaveLength(1);
    expect(await getDeadLetter(env.LEDGER, env.PAYLOADS, erp[0]!)).not.toBeNull();
    expect((await postForm("/console/deliveries/bulk/delete", operator, { status: "retrying" })).status).toBe(400);
  });

  it("warn that a replay into a paused destination waits, and answer a bad filter or job with a page", async () => {
    await deadLetters("wms", 1);
    expectRedirect(await postForm("/console/destinations/wms/pause", operator), /destinations/);
    try {
      expect(textOf(await get("/console/deliveries/bulk/replay?status=dead"))).toContain("wms is paused by hand");
    } finally {
      await postForm("/console/destinations/wms/resume", operator);
    }
    expect(textOf(await get("/console/deliveries/bulk/replay?since=yesterday", operator, 400))).toContain(
      "Parameter: since",
    );
    expect(await get("/console/deliveries/bulk/replay?since=2026-12-01T08:00Z")).toContain(
      'value="2026-12-01T08:00:00.000Z"',
    );
    expect(textOf(await get("/console/jobs/999999", operator, 404))).toContain("There is no bulk action 999999.");
    expect(textOf(await get("/console/jobs/abc", operator, 404))).toContain("There is no bulk action abc.");
  });
});
