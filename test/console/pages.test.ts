import { env } from "cloudflare:workers";
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { readableError } from "../../src/console/layout.tsx";
import { getCall } from "../../src/ledger/calls.ts";
import { getDeadLetter } from "../../src/ledger/dead-letters.ts";
import { QUEUES } from "../../src/queues/names.ts";
import {
  clearLedger,
  clearRules,
  consume,
  deadLetterRecord,
  deliveryMessage,
  EXAMPLE_RULES,
  eventually,
  FIXTURES,
  freshId,
  putRules,
  sentDeliveries,
  signedPost,
  VIEWER_TOKEN,
} from "../helpers.ts";
import { expectRedirect, noticeCookieOf, page, postForm, signIn, textOf } from "./helpers.ts";

let cookie: string;
let orderId: string;

/** Sends the OrderCreated sample under a fresh Id and waits until the ledger has both deliveries delivered. */
async function sendOrder(): Promise<string> {
  const id = freshId();
  const body = FIXTURES["OrderCreated.json"]!.replace(/"Id":"[0-9a-f]+"/, `"Id":"${id}"`);
  expect((await signedPost(body)).status).toBe(202);
  await eventually(async () => {
    const trace = await getCall(env.LEDGER, id);
    expect(trace?.deliveries.map((d) => d.status)).toEqual(["delivered", "delivered"]);
  }, 25_000);
  return id;
}

beforeAll(async () => {
  await clearLedger();
  await putRules(EXAMPLE_RULES);
  vi.spyOn(globalThis, "fetch").mockImplementation(async () => new Response("ok"));
  orderId = await sendOrder();
  vi.restoreAllMocks();
  cookie = await signIn();
}, 60_000);
beforeEach(() => putRules(EXAMPLE_RULES));
afterEach(() => vi.restoreAllMocks());

const text = async (path: string, status = 200) => {
  const response = await page(path, cookie);
  expect(response.status, path).toBe(status);
  return textOf(await response.text());
};

/** Stores dead letters the way the relay does: through the dead-letter consumer. */
async function storeDeadLetters(...records: ReturnType<typeof deadLetterRecord>[]) {
  expect((await consume(QUEUES.deadLetters, records)).explicitAcks).toHaveLength(records.length);
}

describe("the overview", () => {
  it("shows each destination's last 24 hours, the calls per Action, and the rules' version and warnings", async () => {
    await putRules({
      ...EXAMPLE_RULES,
      destinations: {
        ...EXAMPLE_RULES.destinations,
        crm: { url: "https://crm.test", signing: { scheme: "ms-signature", secret: "CRM_SECRET" } },
      },
    });
    const html = await (await page("/console", cookie)).text();
    expect(html).toContain('aria-current="page">Overview');
    const overview = textOf(html);
    expect(overview).toMatch(/wms active 1 0 0 0 \d+ ms \d+ ms \d{4}-\d\d-\d\d [\d:]+Z —/);
    expect(overview).toMatch(/crm active 0 0 0 0 — — — —/);
    expect(overview).toContain("OrderCreated 1");
    expect(overview).toMatch(/Version [0-9a-f]{12}/);
    expect(overview).toContain("destinations.crm.signing.secret: secret CRM_SECRET is not set");
  });

  it("says so when no rules are stored", async () => {
    await clearRules();
    expect(await text("/console")).toContain("No rules are stored: every call is accepted with 0 deliveries.");
  });
});

describe("calls", () => {
  it("are found by business key, and an exact Id goes straight to its page", async () => {
    const found = await text("/console/calls?q=3339887");
    expect(found).toContain(orderId);
    expect(found).toMatch(new RegExp(`${orderId} OrderCreated 3339887 2 delivered`));
    expectRedirect(await page(`/console/calls?q=${orderId}`, cookie), `/console/calls/${orderId}`);
  });

  it("filter by Action, destination, status and time window; the empty fields of the form are dropped", async () => {
    expect(await text("/console/calls?action=OrderCreated&destination=shop&status=delivered&window=1h")).toContain(
      orderId,
    );
    expect(await text("/console/calls?q=3339887&status=dead")).toContain("No calls match.");
    expectRedirect(
      await page("/console/calls?q=3339887&action=&destination=&status=&window=", cookie),
      "/console/calls?q=3339887",
    );
  });

  it("answer a bad parameter with a 400 page naming it", async () => {
    for (const [query, parameter] of [
      ["status=lost", "status"],
      ["window=1y", "window"],
      ["cursor=garbage", "cursor"],
      [`q=${"x".repeat(201)}`, "q"],
    ]) {
      const shown = await text(`/console/calls?${query}`, 400);
      expect(shown).toContain(`Parameter: ${parameter}`);
      expect(shown).toContain(`${parameter} must be`);
    }
  });

  it("a call's page shows its notifications, why other routes did not match, and every attempt", async () => {
    const shown = await text(`/console/calls/${orderId}`);
    expect(shown).toContain(`Call ${orderId}`);
    expect(shown).toMatch(/0 OrderCreated — 3339887 orders wms, shop/);
    expect(shown).toContain(
      "stock-yx-to-shop action OrderCreated is not one of AvailableBalanceChanged, BalanceChanged",
    );
    expect(shown).toContain("archive disabled the route is disabled");
    expect(shown).toMatch(/wms delivered Delivery id [0-9a-f]+\.wms/);
    expect(shown).toMatch(/1 \d{4}-\d\d-\d\d [\d:]+Z 200 — \d+ ms delivered/);
  });

  it("an unknown call is a 404 page", async () => {
    expect(await text("/console/calls/0000000000000000000000000000dead", 404)).toContain(
      "The ledger has no call with Id 0000000000000000000000000000dead",
    );
  });

  it("Resend sends a delivery again with the admin API's code, then returns to the call with a notice", async () => {
    const send = vi.spyOn(env.DELIVERIES, "sendBatch").mockResolvedValue(undefined as never);
    const response = await postForm(`/console/deliveries/${orderId}.wms/resend`, cookie, { call: orderId });
    expectRedirect(response, `/console/calls/${orderId}`);
    expect(sentDeliveries(send)).toEqual([expect.objectContaining({ deliveryId: `${orderId}.wms`, run: 1 })]);
    const shown = textOf(
      await (await page(`/console/calls/${orderId}`, `${cookie}; ${noticeCookieOf(response)}`)).text(),
    );
    expect(shown).toContain("The delivery was sent again");
    expect(shown).toMatch(/wms pending/);
  });
});

describe("dead letters", () => {
  it("are counted per destination, listed, opened, replayed, deleted and replayed in bulk, counts following", async () => {
    await clearLedger();
    const records = [deadLetterRecord("wms"), deadLetterRecord("wms"), deadLetterRecord("shop")];
    await storeDeadLetters(...records);
    const [first, second, third] = records.map((r) => r.deliveryId) as [string, string, string];
    const list = await text("/console/dead-letters");
    expect(list).toContain("shop 1 Replay all of shop (1)");
    expect(list).toContain("wms 2 Replay all of wms (2)");
    expect(list).toContain("All 3 Replay all (3)");
    expect(await text("/console/dead-letters?destination=shop")).not.toContain(first);

    const detail = await text(`/console/dead-letters/${encodeURIComponent(first)}`);
    expect(detail).toContain("Reason permanent_failure — The receiver answered 3xx, 410 or another 4xx");
    expect(detail).toContain("The receiver answered HTTP 410, which is not retried.");
    expect(detail).toContain('"Action": "OrderCreated"');

    const send = vi.spyOn(env.DELIVERIES, "sendBatch").mockResolvedValue(undefined as never);
    expectRedirect(
      await postForm(`/console/dead-letters/${encodeURIComponent(first)}/replay`, cookie, { back: "wms" }),
      "/console/dead-letters?destination=wms",
    );
    expect(await getDeadLetter(env.LEDGER, env.PAYLOADS, first)).toBeNull();
    expect(await text("/console/dead-letters")).toContain("wms 1 Replay all of wms (1)");

    expectRedirect(
      await postForm(`/console/dead-letters/${encodeURIComponent(second)}/delete`, cookie),
      "/console/dead-letters",
    );
    expect(await getDeadLetter(env.LEDGER, env.PAYLOADS, second)).toBeNull();

    const all = await postForm("/console/dead-letters/replay", cookie, { destination: "shop" });
    expectRedirect(all, "/console/dead-letters?destination=shop");
    expect(noticeCookieOf(all)).toBe("__Host-console_notice=replayed_all.1.0");
    expect(await getDeadLetter(env.LEDGER, env.PAYLOADS, third)).toBeNull();
    expect(sentDeliveries(send).map((m) => m.deliveryId)).toEqual([first, third]);
    const after = textOf(await (await page("/console/dead-letters", `${cookie}; ${noticeCookieOf(all)}`)).text());
    expect(after).toContain("1 dead letter was sent again.");
    expect(after).toContain("No dead letters.");
  });

  it("an unknown one is a 404 page", async () => {
    expect(await text("/console/dead-letters/nope.wms", 404)).toContain("There is no dead letter with delivery id");
  });

  it("Replay all goes round after round while more remain", async () => {
    await clearLedger();
    vi.spyOn(env.DELIVERIES, "sendBatch").mockResolvedValue(undefined as never);
    const records = Array.from({ length: 130 }, () => deadLetterRecord("wms", undefined, deliveryMessage("wms")));
    for (let i = 0; i < records.length; i += 50) await storeDeadLetters(...records.slice(i, i + 50));
    const all = await postForm("/console/dead-letters/replay", cookie, {});
    expectRedirect(all, "/console/dead-letters");
    expect(noticeCookieOf(all)).toBe("__Host-console_notice=replayed_all.130.0");
    expect(await text("/console/dead-letters")).toContain("No dead letters.");
  });
});

describe("destinations", () => {
  it("show each destination's settings, secrets by name only, and their last 24 hours", async () => {
    vi.spyOn(globalThis, "fetch").mockImplementation(async () => new Response("ok"));
    await sendOrder();
    const shown = await text("/console/destinations");
    // Its gate heard of no failure, so of no success either: the last success is the ledger's.
    expect(shown).toMatch(
      /wms active Held none In flight 0 Failed in a row 0 Last success \d{4}-\d\d-\d\d [\d:]+Z Pause wms/,
    );
    expect(shown).toContain("Pause wms Holds every delivery, in order, and attempts none until resumed.");
    expect(shown).toContain("URL https://wms.test/extend Signing ms-signature with secret WMS_SECRET");
    expect(shown).toContain("Timeout 10000 ms Max attempts 12 Mode envelope Enabled yes");
    expect(shown).toContain(
      "Rate limit none Concurrency no limit Circuit breaker pauses after 20 failed attempts in a row, for 300 s Tech contact none: its alerts go to the relay's alert webhook, if one is set",
    );
    expect(shown).toContain("Headers X-Api-Key: secret SHOP_API_KEY; X-Source: extend");
    expect(shown).toMatch(
      /Last 24 hours: (no deliveries|\d+ delivered, \d+ retrying, \d+ held, \d+ dead, \d+ pending)\./,
    );
  });

  it("pause and resume a destination with the admin API's code: held while paused, sent in order after", async () => {
    const name = `shop${Date.now().toString(36)}`;
    await putRules({
      ...EXAMPLE_RULES,
      destinations: {
        ...EXAMPLE_RULES.destinations,
        [name]: {
          url: "https://paused.test/",
          rateLimit: { perMinute: 600 },
          concurrency: 3,
          techContact: "ops@example.com",
        },
      },
    });
    const paused = await postForm(`/console/destinations/${name}/pause`, cookie);
    expectRedirect(paused, `/console/destinations#destination-${name}`);
    const shown = textOf(await (await page("/console/destinations", `${cookie}; ${noticeCookieOf(paused)}`)).text());
    expect(shown).toContain("Paused: its deliveries are held in arrival order");
    expect(shown).toMatch(new RegExp(`${name} paused by hand Paused since [\\d-]+ [\\d:]+Z \\(by hand`));
    expect(shown).toContain(`Resume ${name}`);
    expect(shown).toContain("Rate limit 600 a minute Concurrency 3 at once");
    expect(shown).toContain("Tech contact ops@example.com");

    const sent: string[] = [];
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      sent.push(new Request(input, init).headers.get("x-relay-delivery-id") ?? "");
      return new Response("ok");
    });
    const messages = [deliveryMessage(name), deliveryMessage(name)];
    await consume(QUEUES.deliveries, messages);
    expect(sent).toEqual([]);
    expect(await text("/console/destinations")).toContain("Held 2, to go out in arrival order");
    expect(textOf(await (await page("/console", cookie)).text())).toContain("paused by hand");

    const resumed = await postForm(`/console/destinations/${name}/resume`, cookie);
    expectRedirect(resumed, `/console/destinations#destination-${name}`);
    expect(noticeCookieOf(resumed)).toBe("__Host-console_notice=resumed.0.0");
    await eventually(() => expect(sent).toEqual(messages.map((m) => m.deliveryId)));
    expect(await text("/console/destinations")).toContain(`${name} active Held none`);
  });

  it("refuse a pause without the form's CSRF token, changing nothing, and 404 an unknown destination", async () => {
    expect((await postForm("/console/destinations/wms/pause", cookie, {}, { csrf: false })).status).toBe(403);
    expect(await text("/console/destinations")).toContain("wms active");
    expect((await postForm("/console/destinations/nowhere/pause", cookie)).status).toBe(404);
  });

  it("show a URL kept in a secret by the secret's name", async () => {
    await putRules({
      version: 1,
      destinations: { slack: { url: { secret: "SLACK_URL" } } },
      routes: [{ name: "all", actions: ["*"], to: ["slack"] }],
    });
    expect(await text("/console/destinations")).toContain("URL secret SLACK_URL Signing none");
  });
});

describe("try a payload", () => {
  it("loads a bundled sample into the editor", async () => {
    const html = await (await page("/console/try?sample=PickingStarted", cookie)).text();
    expect(html).toContain("&quot;Action&quot;: &quot;PickingStarted&quot;");
    expect(html).toContain('<option value="PickingStarted" selected="">');
    expect(await text("/console/try?sample=Nope", 400)).toContain("Parameter: sample");
  });

  it("shows the dry run as tables: matches, the other routes' reasons, and the deliveries; nothing is enqueued", async () => {
    const send = vi.spyOn(env.DELIVERIES, "sendBatch");
    const response = await postForm("/console/try", cookie, { envelope: FIXTURES["multi.json"]! });
    expect(response.status).toBe(200);
    const shown = textOf(await response.text());
    expect(shown).toContain("0 AvailableBalanceChanged YX stock-yx-to-shop shop 1 OrderCreated — orders wms, shop");
    expect(shown).toContain('3 PurchasePartiallyDelivered rp-purchases where Details.OrderNumber is "95510"');
    expect(shown).toMatch(/[0-9a-f]+\.wms wms [a-z-, ]+ \d+ \d+/);
    expect(shown).toMatch(/Sent, it would be enqueued in 1 batch\./);
    expect(send).not.toHaveBeenCalled();
  });

  it("names what is wrong with a body that is not an envelope", async () => {
    const response = await postForm("/console/try", cookie, { envelope: '{"Id": 5, "Notifications": []}' });
    expect(response.status).toBe(400);
    expect(textOf(await response.text())).toContain("Id: must be a string");
  });
});

describe("asking first", () => {
  it("a replay, a delete and a bulk replay each have a page that says what happens, and the lists link to it", async () => {
    await clearLedger();
    const records = [deadLetterRecord("wms"), deadLetterRecord("wms"), deadLetterRecord("shop")];
    await storeDeadLetters(...records);
    const id = records[0]!.deliveryId;
    const list = await (await page("/console/dead-letters", cookie)).text();
    // No form that acts at one click: links to the pages that ask.
    expect(list.match(/method="post"/g)).toHaveLength(1); // the sign-out
    expect(list).toContain(`href="/console/dead-letters/${id}/replay"`);
    expect(list).toContain('href="/console/dead-letters/replay"');

    const replay = await page(`/console/dead-letters/${encodeURIComponent(id)}/replay?back=wms`, cookie);
    expect(replay.status).toBe(200);
    const replayHtml = await replay.text();
    expect(textOf(replayHtml)).toContain("Replay this dead letter? ");
    expect(replayHtml).toContain(`action="/console/dead-letters/${id}/replay"`);
    expect(replayHtml).toContain('name="back" value="wms"');
    expect(textOf(replayHtml)).not.toContain("is paused");

    const remove = textOf(await (await page(`/console/dead-letters/${encodeURIComponent(id)}/delete`, cookie)).text());
    expect(remove).toContain("Delete this dead letter? ");
    expect(remove).toContain("This cannot be undone.");
    expect(remove).toContain("Delete it Cancel");

    const all = textOf(await (await page("/console/dead-letters/replay?destination=wms", cookie)).text());
    expect(all).toContain("Replay all 2 dead letters of wms?");
    expect(all).toContain("wms: 2");
    expect(all).toContain("Replay all 2 Cancel");
    expect(textOf(await (await page("/console/dead-letters/replay", cookie)).text())).toContain(
      "Replay all 3 dead letters?",
    );
    // Asking changes nothing.
    expect(await getDeadLetter(env.LEDGER, env.PAYLOADS, id)).not.toBeNull();
    expect(await text("/console/dead-letters/nope.wms/replay", 404)).toContain("There is no dead letter");
  });

  it("warns that a replay or a resend into a paused destination waits until it is resumed", async () => {
    await clearLedger();
    const record = deadLetterRecord("wms");
    await storeDeadLetters(record);
    vi.spyOn(globalThis, "fetch").mockImplementation(async () => new Response("ok"));
    orderId = await sendOrder();
    vi.restoreAllMocks();
    expectRedirect(await postForm("/console/destinations/wms/pause", cookie), /destinations/);
    try {
      const replay = await text(`/console/dead-letters/${encodeURIComponent(record.deliveryId)}/replay`);
      expect(replay).toMatch(
        /wms is paused by hand since [\d-]+ [\d:]+Z: the replay will wait, held in arrival order, until it is resumed\./,
      );
      expect(await text("/console/dead-letters/replay")).toContain("wms is paused by hand");
      const resend = await text(`/console/deliveries/${orderId}.wms/resend`);
      expect(resend).toContain("Resend to wms?");
      expect(resend).toContain("the delivery will wait, held in arrival order, until it is resumed");
      expect(resend).toContain("It was delivered: the receiver gets it twice");
      expect(await text(`/console/deliveries/${orderId}.shop/resend`)).not.toContain("is paused");
    } finally {
      await postForm("/console/destinations/wms/resume", cookie);
    }
  });

  it("shows a viewer what an action would do, and no form", async () => {
    const viewer = await signIn(VIEWER_TOKEN);
    const html = await (await page(`/console/deliveries/${orderId}.wms/resend`, viewer)).text();
    expect(textOf(html)).toContain("Only an operator can do this");
    expect(html.match(/method="post"/g)).toHaveLength(1); // the sign-out
    expect(await (await page(`/console/calls/${orderId}`, viewer)).text()).not.toContain("/resend");
  });
});

describe("a notice", () => {
  it("shows once: the page that shows it removes the cookie that held it; an unknown one shows nothing", async () => {
    const shown = await page("/console/calls", `${cookie}; __Host-console_notice=deleted.0.0`);
    expect(textOf(await shown.text())).toContain("The dead letter was deleted.");
    expect(shown.headers.getSetCookie()).toContainEqual(expect.stringMatching(/^__Host-console_notice=; Max-Age=0/));
    for (const value of ["nope.0.0", "deleted", "<script>.1.1"]) {
      const html = await (await page("/console/calls", `${cookie}; __Host-console_notice=${value}`)).text();
      expect(html, value).not.toContain('role="status"');
    }
  });
});

describe("auto-refresh", () => {
  it("is off unless asked; ?refresh=30 reloads the overview and the calls list, keeping the filters", async () => {
    expect(await (await page("/console", cookie)).text()).not.toContain("http-equiv");
    const on = await (await page("/console?refresh=30", cookie)).text();
    expect(on).toContain('<meta http-equiv="refresh" content="30"/>');
    expect(textOf(on)).toContain("This page reloads itself every 30 seconds. Stop refreshing");
    const calls = await (await page("/console/calls?status=delivered&refresh=60", cookie)).text();
    expect(calls).toContain('<meta http-equiv="refresh" content="60"/>');
    expect(calls).toContain('href="/console/calls?status=delivered">Stop refreshing');
    expect(calls).toContain('<input type="hidden" name="refresh" value="60"/>');
    expect(await text("/console?refresh=1", 400)).toContain("Parameter: refresh");
  });
});

describe("attempt errors", () => {
  it("read without the JavaScript error's name the relay recorded", () => {
    expect(readableError("network error: Error: Network connection lost.")).toBe(
      "network error: Network connection lost.",
    );
    expect(readableError("network error: TypeError: fetch failed")).toBe("network error: fetch failed");
    expect(readableError("HTTP 500")).toBe("HTTP 500");
    expect(readableError("Attempt 2 of 2 failed (network error: Error: x); no attempts are left.")).toBe(
      "Attempt 2 of 2 failed (network error: x); no attempts are left.",
    );
  });
});

describe("addresses", () => {
  it("/console/ goes to /console, and an unknown page is a 404 page", async () => {
    const slash = await page("/console/", cookie);
    expect(slash.status).toBe(301);
    expect(slash.headers.get("location")).toBe("/console");
    expect(await text("/console/nothing", 404)).toContain("There is no console page at /console/nothing.");
  });
});
